// Joint bilateral filter of a float32 disparity map guided by a BGR uint8 frame (../shared/DESIGN.md):
//   out(p) = sum_q ws(q-p) wr(I(q)-I(p)) D(q) / sum_q ws(q-p) wr(I(q)-I(p)),  q in the (2r+1)^2 window,
// q outside the image skipped (no clamping, no padding). ws comes from a host-computed table in constant
// memory (refreshed by the wrapper only when radius or sigma_spatial change); wr = lut[|db|] lut[|dg|] lut[|dr|]
// since exp(-a-b-c) = exp(-a) exp(-b) exp(-c), or one __expf: both variants are built, the benchmark picks.
// Compiles with nvcc -std=c++17 and with NVRTC (no standard headers).

#define JB_MAX_RADIUS 16
#define JB_MAX_TAPS ((2 * JB_MAX_RADIUS + 1) * (2 * JB_MAX_RADIUS + 1))
#define JB_BLOCK_X 32
#define JB_BLOCK_Y 8

__constant__ float c_spatial[JB_MAX_TAPS];  // row-major (2r+1)x(2r+1), stride 2r+1
__constant__ float c_range_lut[256];         // exp(-(d/255)^2 / (2 sigma_r^2)), floored like the CPU table

__device__ __forceinline__ unsigned int pack_bgr(const unsigned char* guide, int index) {
    const unsigned char* p = guide + 3 * index;
    return (unsigned int)p[0] | ((unsigned int)p[1] << 8) | ((unsigned int)p[2] << 16);
}

__device__ __forceinline__ int channel(unsigned int packed, int shift) { return (int)((packed >> shift) & 0xFFu); }

// Shared-memory tiles: the block's (32+2r) x (8+2r) window of packed guide pixels and disparity; then each
// thread loops over the window offsets (dy, dx) in the same order as its warp, so the constant-memory read
// c_spatial[t] is one broadcast per warp. Dynamic shared memory: tile_w*tile_h*8 bytes + the 1 KiB LUT.
template <bool kExpf>
__device__ __forceinline__ void joint_bilateral_tile(const float* __restrict__ disparity,
                                                     const unsigned char* __restrict__ guide,
                                                     float* __restrict__ out, int height, int width, int radius,
                                                     float neg_inv_two_sigma_r2) {
    extern __shared__ unsigned char smem[];
    const int tile_w = JB_BLOCK_X + 2 * radius;
    const int tile_h = JB_BLOCK_Y + 2 * radius;
    float* lut = reinterpret_cast<float*>(smem);
    unsigned int* tile_guide = reinterpret_cast<unsigned int*>(smem + 256 * sizeof(float));
    float* tile_disp = reinterpret_cast<float*>(tile_guide + tile_w * tile_h);

    const int tid = threadIdx.y * JB_BLOCK_X + threadIdx.x;
    const int nthreads = JB_BLOCK_X * JB_BLOCK_Y;
    if (!kExpf) {
        for (int i = tid; i < 256; i += nthreads) lut[i] = c_range_lut[i];
    }
    const int origin_x = blockIdx.x * JB_BLOCK_X - radius;
    const int origin_y = blockIdx.y * JB_BLOCK_Y - radius;
    for (int i = tid; i < tile_w * tile_h; i += nthreads) {
        const int gx = origin_x + i % tile_w;
        const int gy = origin_y + i / tile_w;
        if (gx >= 0 && gx < width && gy >= 0 && gy < height) {
            const int index = gy * width + gx;
            tile_guide[i] = pack_bgr(guide, index);
            tile_disp[i] = disparity[index];
        } else {  // never read: out-of-image taps are skipped below
            tile_guide[i] = 0u;
            tile_disp[i] = 0.0f;
        }
    }
    __syncthreads();

    const int x = blockIdx.x * JB_BLOCK_X + threadIdx.x;
    const int y = blockIdx.y * JB_BLOCK_Y + threadIdx.y;
    if (x >= width || y >= height) return;  // after the barrier: every thread helped load the tile

    const int cx = threadIdx.x + radius;
    const int cy = threadIdx.y + radius;
    const unsigned int centre = tile_guide[cy * tile_w + cx];
    const int cb = channel(centre, 0), cg = channel(centre, 8), cr = channel(centre, 16);
    const int k = 2 * radius + 1;
    float num = 0.0f, den = 0.0f;
    for (int dy = -radius; dy <= radius; ++dy) {
        if ((unsigned int)(y + dy) >= (unsigned int)height) continue;
        const int row = (cy + dy) * tile_w + cx;
        const float* spatial_row = c_spatial + (dy + radius) * k + radius;
        for (int dx = -radius; dx <= radius; ++dx) {
            if ((unsigned int)(x + dx) >= (unsigned int)width) continue;
            const unsigned int q = tile_guide[row + dx];
            const int db = channel(q, 0) - cb, dg = channel(q, 8) - cg, dr = channel(q, 16) - cr;
            float range;
            if (kExpf) {
                range = __expf(neg_inv_two_sigma_r2 * (float)(db * db + dg * dg + dr * dr));
            } else {
                range = lut[abs(db)] * lut[abs(dg)] * lut[abs(dr)];
            }
            const float w = spatial_row[dx] * range;
            num = fmaf(w, tile_disp[row + dx], num);
            den += w;
        }
    }
    out[y * width + x] = num / den;  // den >= ws(0) wr(0) = 1 (q = p)
}

extern "C" __global__ void __launch_bounds__(JB_BLOCK_X * JB_BLOCK_Y)
joint_bilateral_lut(const float* __restrict__ disparity, const unsigned char* __restrict__ guide,
                    float* __restrict__ out, int height, int width, int radius) {
    joint_bilateral_tile<false>(disparity, guide, out, height, width, radius, 0.0f);
}

// neg_inv_two_sigma_r2 = -1 / (2 sigma_r^2 255^2): the squared channel differences stay integers.
extern "C" __global__ void __launch_bounds__(JB_BLOCK_X * JB_BLOCK_Y)
joint_bilateral_expf(const float* __restrict__ disparity, const unsigned char* __restrict__ guide,
                     float* __restrict__ out, int height, int width, int radius, float neg_inv_two_sigma_r2) {
    joint_bilateral_tile<true>(disparity, guide, out, height, width, radius, neg_inv_two_sigma_r2);
}

// The plain baseline for the benchmark: global memory only, weights computed with expf per tap.
extern "C" __global__ void joint_bilateral_global(const float* __restrict__ disparity,
                                                  const unsigned char* __restrict__ guide,
                                                  float* __restrict__ out, int height, int width, int radius,
                                                  float neg_inv_two_sigma_s2, float neg_inv_two_sigma_r2) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= width || y >= height) return;
    const unsigned char* p = guide + 3 * (y * width + x);
    float num = 0.0f, den = 0.0f;
    for (int qy = max(0, y - radius); qy <= min(height - 1, y + radius); ++qy) {
        for (int qx = max(0, x - radius); qx <= min(width - 1, x + radius); ++qx) {
            const unsigned char* q = guide + 3 * (qy * width + qx);
            const float db = (float)q[0] - (float)p[0], dg = (float)q[1] - (float)p[1], dr = (float)q[2] - (float)p[2];
            const float ds = (float)((qx - x) * (qx - x) + (qy - y) * (qy - y));
            const float w = expf(neg_inv_two_sigma_s2 * ds) * expf(neg_inv_two_sigma_r2 * (db * db + dg * dg + dr * dr));
            num = fmaf(w, disparity[qy * width + qx], num);
            den += w;
        }
    }
    out[y * width + x] = num / den;
}

// Bilinear resize of a float32 map with cv2.resize(INTER_LINEAR)'s pixel-centre alignment (edge-clamped):
// live mode on the GPU upsamples the network's low-resolution disparity before the full-resolution filter.
extern "C" __global__ void resize_bilinear_f32(const float* __restrict__ src, int src_h, int src_w,
                                               float* __restrict__ dst, int dst_h, int dst_w) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= dst_w || y >= dst_h) return;
    const float fx = fmaxf(((float)x + 0.5f) * ((float)src_w / (float)dst_w) - 0.5f, 0.0f);
    const float fy = fmaxf(((float)y + 0.5f) * ((float)src_h / (float)dst_h) - 0.5f, 0.0f);
    const int x0 = min((int)fx, src_w - 1), y0 = min((int)fy, src_h - 1);
    const int x1 = min(x0 + 1, src_w - 1), y1 = min(y0 + 1, src_h - 1);
    const float ax = fx - (float)x0, ay = fy - (float)y0;
    const float top = src[y0 * src_w + x0] * (1.0f - ax) + src[y0 * src_w + x1] * ax;
    const float bottom = src[y1 * src_w + x0] * (1.0f - ax) + src[y1 * src_w + x1] * ax;
    dst[y * dst_w + x] = top * (1.0f - ay) + bottom * ay;
}
