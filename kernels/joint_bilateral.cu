// Joint bilateral filter of a float32 disparity map guided by a BGR uint8 frame (../shared/DESIGN.md):
//   out(p) = sum_q ws(q-p) wr(I(q)-I(p)) D(q) / sum_q ws(q-p) wr(I(q)-I(p)),  q in the (2r+1)^2 window,
// q outside the image skipped (no clamping, no padding). ws comes from a host-computed table in constant
// memory (refreshed by the wrapper only when radius or sigma_spatial change); wr = lut[|db|] lut[|dg|] lut[|dr|]
// since exp(-a-b-c) = exp(-a) exp(-b) exp(-c), or one hardware exp2: both are built, the benchmark picks.
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

__device__ __forceinline__ float fast_exp2(float x) {  // one MUFU.EX2; rel. error ~2^-22, 0 for x = -inf
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// Shared-memory tiles hold the block's (32+2r) x (8+2r) window of guide pixels and disparity. Each thread
// then walks the window offsets (dy, dx) in the same order as its warp, so c_spatial[t] is one broadcast per
// warp; the window is clipped to the image once per pixel (q outside is skipped, never clamped or padded).
// Variant LUT: packed BGR (uint32) + disparity tiles, range = lut[|db|] lut[|dg|] lut[|dr|] from a shared copy
// of c_range_lut. Variant EXP2: one float4 (b, g, r, d) per pixel (one 16-byte load per tap) and
// range = 2^(c * (db^2 + dg^2 + dr^2)) with integer-exact differences, c = -log2(e) / (2 sigma_r^2 255^2).
template <bool kExp2>
__device__ __forceinline__ void joint_bilateral_tile(const float* __restrict__ disparity,
                                                     const unsigned char* __restrict__ guide,
                                                     float* __restrict__ out, int height, int width, int radius,
                                                     float range_log2_scale) {
    extern __shared__ float4 smem4[];  // float4: 16-byte aligned for both layouts
    const int tile_w = JB_BLOCK_X + 2 * radius;
    const int tile_h = JB_BLOCK_Y + 2 * radius;
    const int tile_n = tile_w * tile_h;
    float4* tile4 = smem4;                                               // EXP2: tile_n float4
    float* lut = reinterpret_cast<float*>(smem4);                        // LUT: 256 floats, then
    unsigned int* tile_guide = reinterpret_cast<unsigned int*>(lut + 256);  //   tile_n packed BGR
    float* tile_disp = reinterpret_cast<float*>(tile_guide + tile_n);      //   tile_n disparities

    const int tid = threadIdx.y * JB_BLOCK_X + threadIdx.x;
    const int nthreads = JB_BLOCK_X * JB_BLOCK_Y;
    if (!kExp2) {
        for (int i = tid; i < 256; i += nthreads) lut[i] = c_range_lut[i];
    }
    const int origin_x = blockIdx.x * JB_BLOCK_X - radius;
    const int origin_y = blockIdx.y * JB_BLOCK_Y - radius;
    for (int i = tid; i < tile_n; i += nthreads) {
        const int gx = origin_x + i % tile_w;
        const int gy = origin_y + i / tile_w;
        const bool inside = gx >= 0 && gx < width && gy >= 0 && gy < height;
        const int index = gy * width + gx;
        const unsigned int bgr = inside ? pack_bgr(guide, index) : 0u;  // outside: never read below
        const float d = inside ? disparity[index] : 0.0f;
        if (kExp2) {
            tile4[i] = make_float4((float)channel(bgr, 0), (float)channel(bgr, 8), (float)channel(bgr, 16), d);
        } else {
            tile_guide[i] = bgr;
            tile_disp[i] = d;
        }
    }
    __syncthreads();

    const int x = blockIdx.x * JB_BLOCK_X + threadIdx.x;
    const int y = blockIdx.y * JB_BLOCK_Y + threadIdx.y;
    if (x >= width || y >= height) return;  // after the barrier: every thread helped load the tile

    const int dy_lo = max(-radius, -y), dy_hi = min(radius, height - 1 - y);
    const int dx_lo = max(-radius, -x), dx_hi = min(radius, width - 1 - x);
    const int k = 2 * radius + 1;
    const int centre = (threadIdx.y + radius) * tile_w + threadIdx.x + radius;
    float num = 0.0f, den = 0.0f;
    if (kExp2) {
        const float4 p = tile4[centre];
        for (int dy = dy_lo; dy <= dy_hi; ++dy) {
            const float4* row = tile4 + centre + dy * tile_w;
            const float* spatial_row = c_spatial + (dy + radius) * k + radius;
            for (int dx = dx_lo; dx <= dx_hi; ++dx) {
                const float4 q = row[dx];
                const float db = q.x - p.x, dg = q.y - p.y, dr = q.z - p.z;
                const float w = spatial_row[dx] * fast_exp2(range_log2_scale * fmaf(db, db, fmaf(dg, dg, dr * dr)));
                num = fmaf(w, q.w, num);
                den += w;
            }
        }
    } else {
        const unsigned int p = tile_guide[centre];
        const int pb = channel(p, 0), pg = channel(p, 8), pr = channel(p, 16);
        for (int dy = dy_lo; dy <= dy_hi; ++dy) {
            const int row = centre + dy * tile_w;
            const float* spatial_row = c_spatial + (dy + radius) * k + radius;
            for (int dx = dx_lo; dx <= dx_hi; ++dx) {
                const unsigned int q = tile_guide[row + dx];
                const float range = lut[abs(channel(q, 0) - pb)] * lut[abs(channel(q, 8) - pg)] *
                                    lut[abs(channel(q, 16) - pr)];
                const float w = spatial_row[dx] * range;
                num = fmaf(w, tile_disp[row + dx], num);
                den += w;
            }
        }
    }
    out[y * width + x] = num / den;  // den >= ws(0) wr(0) = 1 (q = p)
}

extern "C" __global__ void __launch_bounds__(JB_BLOCK_X * JB_BLOCK_Y)
joint_bilateral_lut(const float* __restrict__ disparity, const unsigned char* __restrict__ guide,
                    float* __restrict__ out, int height, int width, int radius) {
    joint_bilateral_tile<false>(disparity, guide, out, height, width, radius, 0.0f);
}

// range_log2_scale = -log2(e) / (2 sigma_r^2 255^2): squared channel differences stay exact integers.
extern "C" __global__ void __launch_bounds__(JB_BLOCK_X * JB_BLOCK_Y)
joint_bilateral_exp2(const float* __restrict__ disparity, const unsigned char* __restrict__ guide,
                     float* __restrict__ out, int height, int width, int radius, float range_log2_scale) {
    joint_bilateral_tile<true>(disparity, guide, out, height, width, radius, range_log2_scale);
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
            const float dc = db * db + dg * dg + dr * dr;
            const float w = expf(neg_inv_two_sigma_s2 * ds) * expf(neg_inv_two_sigma_r2 * dc);
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
