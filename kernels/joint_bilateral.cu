// Joint bilateral filter of a float32 disparity map guided by a BGR uint8 frame (../shared/DESIGN.md):
//   out(p) = sum_q ws(q-p) wr(I(q)-I(p)) D(q) / sum_q ws(q-p) wr(I(q)-I(p)),  q in the (2r+1)^2 window,
// q outside the image skipped (no clamping, no padding). ws comes from a host-computed table in constant
// memory (refreshed by the wrapper only when radius or sigma_spatial change); wr = lut[|db|] lut[|dg|] lut[|dr|]
// since exp(-a-b-c) = exp(-a) exp(-b) exp(-c), or one hardware exp2: both are built, the benchmark picks.
// A third form (joint_bilateral_exp2_rows*) gives each thread several outputs of one column; see there.
// Compiles with nvcc -std=c++17 and with NVRTC (no standard headers).

#define JB_MAX_RADIUS 16
#define JB_MAX_TAPS ((2 * JB_MAX_RADIUS + 1) * (2 * JB_MAX_RADIUS + 1))
#define JB_BLOCK_X 32
#define JB_BLOCK_Y 8

__constant__ float c_spatial[JB_MAX_TAPS];  // row-major (2r+1)x(2r+1), stride 2r+1
__constant__ float c_range_lut[256];         // exp(-(d/255)^2 / (2 sigma_r^2)), floored like the CPU table
__constant__ float c_spatial_log2[2 * JB_MAX_RADIUS + 1];  // log2 ws along one axis: -d^2 log2(e) / (2 sigma_s^2)

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
    // The clipped inner loops are not unrolled: NVRTC 13.0 (CuPy 14.2, H200) unrolled them so that a pixel
    // whose window the right edge clips took up to 3 columns past dx_hi (tile pixels outside the image: black,
    // disparity 0) in all but one of every 4 columns, at every radius; `unroll 1` gave the exact window there.
    if (kExp2) {
        const float4 p = tile4[centre];
        for (int dy = dy_lo; dy <= dy_hi; ++dy) {
            const float4* row = tile4 + centre + dy * tile_w;
            const float* spatial_row = c_spatial + (dy + radius) * k + radius;
#pragma unroll 1
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
#pragma unroll 1
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

// Register-blocked form: each thread computes R outputs of one column (rows y0 .. y0+R-1), so each tile pixel
// q read from shared memory serves every output whose window holds it. Why: the float4 kernel above reads
// 16 B of shared memory per tap, 4 wavefronts per warp at 128 B/clk/SM, which alone caps it near 0.7 ms at
// 1080p, r = 12 on an H100; here that is 16/R B per tap. The weight is one exp2 of
//   log2(ws wr) = scale * (db^2 + dg^2 + dr^2 + lx(dx) / scale) + ly(dy),  scale = -log2(e) / (2 sigma_r^2 255^2)
// with the separable log2 spatial weight (c_spatial_log2) folded into the exponent: 9 FP32 ops + 1 MUFU a tap.
// The squared differences are exact integers, all terms have one sign: relative error of the exponent ~4 ulp.
// Loops are warp-uniform (no per-pixel clipping): a pixel outside the image is held in the tile as b = 1e30,
// d = 0; its squared difference overflows to +inf, so its weight is exp2(-inf) = 0 exactly: it is skipped.
#define JR_OUTSIDE 1e30f
#define JR_BLOCK_X 32
#define JR_OUT_Y 16  // output rows per block (block height x R); the tile is (32 + 2r) x (16 + 2r) float4

// Accumulates tile row `q_row` (starting at column x - r) into outputs J0..J1; t: the row's index in the
// thread's window rows (dy of output j is t - r - j, its table index t - j).
template <int J0, int J1, int R>
__device__ __forceinline__ void jr_row(const float4* __restrict__ q_row, int t, int k, float scale, float inv_scale,
                                       const float (&pb)[R], const float (&pg)[R], const float (&pr)[R],
                                       float (&num)[R], float (&den)[R]) {
    float ly[R];
#pragma unroll
    for (int j = J0; j <= J1; ++j) ly[j] = c_spatial_log2[t - j];
    for (int dx = 0; dx < k; ++dx) {
        const float4 q = q_row[dx];
        const float lx = c_spatial_log2[dx] * inv_scale;  // one broadcast load a column, shared by all R
#pragma unroll
        for (int j = J0; j <= J1; ++j) {
            const float db = q.x - pb[j], dg = q.y - pg[j], dr = q.z - pr[j];
            const float s = fmaf(db, db, fmaf(dg, dg, fmaf(dr, dr, lx)));
            const float w = fast_exp2(fmaf(s, scale, ly[j]));
            num[j] = fmaf(w, q.w, num[j]);
            den[j] += w;
        }
    }
}

// The rows at the ends of the window: output j alone (J from 0 to R - 1, unrolled at compile time).
template <int J, int R>
__device__ __forceinline__ void jr_edge_row(int lo, int hi, const float4* __restrict__ q_row, int t, int k, float scale,
                                            float inv_scale, const float (&pb)[R], const float (&pg)[R],
                                            const float (&pr)[R], float (&num)[R], float (&den)[R]) {
    if (J >= lo && J <= hi) jr_row<J, J, R>(q_row, t, k, scale, inv_scale, pb, pg, pr, num, den);
    if constexpr (J + 1 < R) jr_edge_row<J + 1, R>(lo, hi, q_row, t, k, scale, inv_scale, pb, pg, pr, num, den);
}

template <int R, int BY>
__device__ __forceinline__ void joint_bilateral_rows(const float* __restrict__ disparity,
                                                     const unsigned char* __restrict__ guide,
                                                     float* __restrict__ out, int height, int width, int radius,
                                                     float scale, float inv_scale) {
    static_assert(R * BY == JR_OUT_Y, "the wrapper sizes the tile for JR_OUT_Y output rows a block");
    extern __shared__ float4 smem4[];
    const int tile_w = JR_BLOCK_X + 2 * radius;
    const int tile_h = JR_OUT_Y + 2 * radius;
    const int origin_x = blockIdx.x * JR_BLOCK_X - radius;
    const int origin_y = blockIdx.y * JR_OUT_Y - radius;
    for (int ty = threadIdx.y; ty < tile_h; ty += BY) {  // 2-D walk: no division per element
        const int gy = origin_y + ty;
        for (int tx = threadIdx.x; tx < tile_w; tx += JR_BLOCK_X) {
            const int gx = origin_x + tx;
            float4 v = make_float4(JR_OUTSIDE, 0.0f, 0.0f, 0.0f);  // outside the image: weight exactly 0
            if (gx >= 0 && gx < width && gy >= 0 && gy < height) {
                const int index = gy * width + gx;
                const unsigned char* g = guide + 3 * index;
                v = make_float4((float)g[0], (float)g[1], (float)g[2], disparity[index]);
            }
            smem4[ty * tile_w + tx] = v;
        }
    }
    __syncthreads();

    const int x = blockIdx.x * JR_BLOCK_X + threadIdx.x;
    const int y0 = blockIdx.y * JR_OUT_Y + threadIdx.y * R;
    const int k = 2 * radius + 1;
    const float4* col = smem4 + threadIdx.y * R * tile_w + threadIdx.x;  // window row t = 0, column x - r
    float pb[R], pg[R], pr[R], num[R], den[R];
#pragma unroll
    for (int j = 0; j < R; ++j) {
        const float4 p = col[(j + radius) * tile_w + radius];
        pb[j] = p.x; pg[j] = p.y; pr[j] = p.z;
        num[j] = 0.0f; den[j] = 0.0f;
    }
    // Window rows t = 0 .. 2r + R - 1; output j sees rows j .. j + 2r. Rows seen by all R outputs take the
    // fused pass; the R - 1 rows at each end take one single-output pass per output that sees them.
    for (int t = 0; t < k + R - 1; ++t, col += tile_w) {
        const int lo = max(0, t - 2 * radius), hi = min(R - 1, t);
        if (lo == 0 && hi == R - 1) {
            jr_row<0, R - 1, R>(col, t, k, scale, inv_scale, pb, pg, pr, num, den);
        } else {
            jr_edge_row<0, R>(lo, hi, col, t, k, scale, inv_scale, pb, pg, pr, num, den);
        }
    }
    if (x >= width) return;
#pragma unroll
    for (int j = 0; j < R; ++j)
        if (y0 + j < height) out[(y0 + j) * width + x] = num[j] / den[j];  // den >= 1: q = p weighs exp2(0)
}

// scale = -log2(e) / (2 sigma_r^2 255^2), inv_scale = 1 / scale; block (32, 4) and (32, 2), both 32 x 16 outputs.
extern "C" __global__ void __launch_bounds__(JR_BLOCK_X * 4)
joint_bilateral_exp2_rows4(const float* __restrict__ disparity, const unsigned char* __restrict__ guide,
                           float* __restrict__ out, int height, int width, int radius, float scale, float inv_scale) {
    joint_bilateral_rows<4, 4>(disparity, guide, out, height, width, radius, scale, inv_scale);
}

extern "C" __global__ void __launch_bounds__(JR_BLOCK_X * 2)
joint_bilateral_exp2_rows8(const float* __restrict__ disparity, const unsigned char* __restrict__ guide,
                           float* __restrict__ out, int height, int width, int radius, float scale, float inv_scale) {
    joint_bilateral_rows<8, 2>(disparity, guide, out, height, width, radius, scale, inv_scale);
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

// --- Live mode (kernels.refine_live): the filter at a working size, then joint bilateral upsampling ---
// The same steps as the CPU path (kernels/bilateral.py, _refine_live_cpu), so both devices give the same
// depth: area-downsample the frame to the working size, filter there (the kernels above), then bring the
// result to the frame's size guided by the full-resolution frame.

// Area resampling for shrinking (cv2.resize INTER_AREA): each output pixel averages its footprint
// [x * sx, (x + 1) * sx) x [y * sy, (y + 1) * sy) of source pixels, partly covered ones by their overlap,
// all C interleaved channels in one walk over the footprint. sx, sy >= 1.
template <int C, typename T>
__device__ __forceinline__ void area_mean(const T* __restrict__ src, int src_h, int src_w, int dst_h, int dst_w,
                                          int x, int y, float (&mean)[C]) {
    const float sx = (float)src_w / (float)dst_w, sy = (float)src_h / (float)dst_h;
    const float x0 = x * sx, x1 = fminf((x + 1) * sx, (float)src_w);
    const float y0 = y * sy, y1 = fminf((y + 1) * sy, (float)src_h);
    float sum[C];
    for (int c = 0; c < C; ++c) sum[c] = 0.0f;
    for (int qy = (int)y0; qy < y1; ++qy) {
        const float wy = fminf(y1, (float)(qy + 1)) - fmaxf(y0, (float)qy);
        float row[C];
        for (int c = 0; c < C; ++c) row[c] = 0.0f;
        for (int qx = (int)x0; qx < x1; ++qx) {
            const float wx = fminf(x1, (float)(qx + 1)) - fmaxf(x0, (float)qx);
            const T* q = src + (qy * src_w + qx) * C;
            for (int c = 0; c < C; ++c) row[c] = fmaf(wx, (float)q[c], row[c]);
        }
        for (int c = 0; c < C; ++c) sum[c] = fmaf(wy, row[c], sum[c]);
    }
    const float inv_area = 1.0f / ((x1 - x0) * (y1 - y0));
    for (int c = 0; c < C; ++c) mean[c] = sum[c] * inv_area;
}

// uint8 BGR frame -> its working-size copy, rounded to the nearest level as OpenCV rounds: halves up in its
// exact 2x2 path ((a + b + c + d + 2) >> 2), to even elsewhere. Rounded to even at 2x2 too, 14% of a 320x240
// frame's working-size levels were 1 off the CPU path's, and its refined depth up to 0.03 off.
extern "C" __global__ void resize_area_bgr(const unsigned char* __restrict__ src, int src_h, int src_w,
                                           unsigned char* __restrict__ dst, int dst_h, int dst_w) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= dst_w || y >= dst_h) return;
    float mean[3];
    area_mean<3>(src, src_h, src_w, dst_h, dst_w, x, y, mean);
    const bool halves_up = src_w == 2 * dst_w && src_h == 2 * dst_h;  // mean is exact there: k / 4
    for (int c = 0; c < 3; ++c) {
        const float level = halves_up ? floorf(mean[c] + 0.5f) : rintf(mean[c]);
        dst[(y * dst_w + x) * 3 + c] = (unsigned char)fminf(fmaxf(level, 0.0f), 255.0f);
    }
}

// float32 map -> working size (the network's disparity, when it is larger than the working size).
extern "C" __global__ void resize_area_f32(const float* __restrict__ src, int src_h, int src_w,
                                           float* __restrict__ dst, int dst_h, int dst_w) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= dst_w || y >= dst_h) return;
    float mean[1];
    area_mean<1>(src, src_h, src_w, dst_h, dst_w, x, y, mean);
    dst[y * dst_w + x] = mean[0];
}

// The two low-resolution taps around full-resolution coordinate i, as the CPU's _upsample_taps: pixel-centre
// alignment, centre = (i + 0.5) low / full - 0.5, its floor taken in integers (exact where the centre is a
// whole number); a tap outside the map, or with a Gaussian weight below 1e-4, weighs 0.
__device__ __forceinline__ void upsample_taps(int i, int full, int low, float inv_two_sigma2, int& i0, int& i1,
                                              float& w0, float& w1) {
    const int twice = (2 * i + 1) * low - full;
    const int first = twice >= 0 ? twice / (2 * full) : -((-twice + 2 * full - 1) / (2 * full));  // floor
    const float centre = (float)twice / (2.0f * (float)full);
    float w[2];
    int index[2];
    for (int t = 0; t < 2; ++t) {
        const int q = first + t;
        index[t] = min(max(q, 0), low - 1);
        const float dq = (float)q - centre;
        const float value = expf(-inv_two_sigma2 * dq * dq);
        w[t] = (q >= 0 && q < low && value >= 1e-4f) ? value : 0.0f;
    }
    i0 = index[0]; i1 = index[1]; w0 = w[0]; w1 = w[1];
}

// Joint bilateral upsampling (Kopf et al. 2007) over the 2x2 low-resolution neighbours of each output pixel:
// weight = Gaussian of the distance in low-res pixels x c_range_lut of the colour difference between the
// full-resolution frame at the pixel and the working-size frame at the neighbour. The range table must
// hold sigma_range's (the wrapper refreshes it before the filter that precedes this kernel).
extern "C" __global__ void joint_bilateral_upsample(const float* __restrict__ low,
                                                    const unsigned char* __restrict__ guide_low, int low_h,
                                                    int low_w, const unsigned char* __restrict__ guide,
                                                    float* __restrict__ out, int height, int width,
                                                    float inv_two_sigma2) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= width || y >= height) return;
    int y0, y1, x0, x1;
    float wy0, wy1, wx0, wx1;
    upsample_taps(y, height, low_h, inv_two_sigma2, y0, y1, wy0, wy1);
    upsample_taps(x, width, low_w, inv_two_sigma2, x0, x1, wx0, wx1);
    const unsigned char* p = guide + 3 * (y * width + x);
    const int pb = p[0], pg = p[1], pr = p[2];
    const int taps[4] = {y0 * low_w + x0, y0 * low_w + x1, y1 * low_w + x0, y1 * low_w + x1};
    const float spatial[4] = {wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1};
    float num = 0.0f, den = 0.0f;
    for (int t = 0; t < 4; ++t) {
        const unsigned char* q = guide_low + 3 * taps[t];
        const float w = spatial[t] * c_range_lut[abs(q[0] - pb)] * c_range_lut[abs(q[1] - pg)] *
                        c_range_lut[abs(q[2] - pr)];
        num = fmaf(w, low[taps[t]], num);
        den += w;
    }
    if (den > 0.0f) {
        out[y * width + x] = num / den;
    } else {  // no neighbour's colour resembles the pixel's (every range weight floored to 0): the nearest sample
        const int row = wy0 >= wy1 ? y0 : y1;
        out[y * width + x] = low[row * low_w + (wx0 >= wx1 ? x0 : x1)];
    }
}
