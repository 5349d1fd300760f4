// Synthetic depth of field: reduce -> scatter-as-gather at reduced resolution -> full-resolution composite (the far
// field rendered, dof_back; its blocks behind the near field, dof_behind_blocks; the near field over, dof_composite).
// Mirrors kernels/dof_cpu*.py pass for pass with the same formulas (the CPU tabulates distances and
// inverse areas that this computes inline), so the two agree to float rounding (<= 1 level, tested by
// running this very source on the host in tests/test_depth_of_field.py). The semantics are documented
// in kernels/dof.py and computed exactly by kernels/dof_reference.py.
// Compiles with nvcc -ptx -arch=sm_90 -std=c++17 and NVRTC --std=c++17 (no includes needed). No shared
// memory: the reduced frame is small and L1/L2-resident, and full-resolution windows are at most
// (2s + 1)^2 pixels ((4s + 1)^2 for the near field: NEAR_EXACT, and for the far one with exact_far: far_exact = 2;
// what lies behind a near pixel: the blocks within 2 s of it pixel by pixel, farther ones a tap each), read through
// the read-only cache.

#define FOCUS_RADIUS 0.5f
#define HIGHLIGHT_THRESHOLD 0.6f
#define HIGHLIGHT_GAIN 4.0f  // a clipped pixel weighs 1 + HIGHLIGHT_GAIN * boost (kernels/dof.py)
#define RAMP_SPREAD 1.0f  // kernels/dof.py: a block's far radius in a depth ramp is its smallest
#define INV_PI 0.31830988618379067f
#define PI_F 3.14159265358979323846f
// what lies behind a near pixel fades in from its own colour over this share of its disc (kernels/dof_reference.py)
#define BEHIND_FADE 0.1f
// the pixels not near weigh in a near pixel's backdrop by 1 / (1 + (d / BEHIND_NEAR_PX)^4) (kernels/dof_reference.py)
#define BEHIND_NEAR_PX 1.5f
// the near field is gathered exactly below a CoC of NEAR_EXACT * s: from s to 2 s the blocks' box and bilinear tent
// spread a disc's light ~1.5 s px past its rim (kernels/dof_cpu_common.py: NEAR_EXACT)
#define NEAR_EXACT 2

__device__ __forceinline__ float split(float r, int s, int far_exact) {
    // Share of a far CoC handled by the reduced gather; the rest is gathered exactly at full resolution
    // (a CoC below s - 1 cannot be represented at 1/s resolution). Cross-fade between s - 1 and s, or with
    // exact_far (far_exact = FAR_EXACT, kernels/dof.py) between 2 s - 1 and 2 s, as the near field.
    if (s == 1) return 1.0f;
    return fminf(fmaxf(r - ((float)(far_exact * s) - 1.0f), 0.0f), 1.0f);
}

__device__ __forceinline__ float split_near(float c, int s) {
    // the near field's reduced share: exact below 2 s - 1, cross-fading up to 2 s (NEAR_EXACT)
    if (s == 1) return 1.0f;
    return fminf(fmaxf(c - ((float)(NEAR_EXACT * s) - 1.0f), 0.0f), 1.0f);
}

__device__ __forceinline__ float reduced_radius(float r, int s) {
    // The reduced gather's disc radius (reduced px) for a block of mean radius r (px): narrowed so that with the
    // blur of the block and of the bilinear composite it spreads as wide as the disc (kernels/dof.py).
    if (s == 1) return r;
    return sqrtf(fmaxf(r * r - (float)(s * s - 1), 0.25f * (float)(s * s))) / (float)s;
}

__device__ __forceinline__ float disc_weight(float re, int dy, int dx) {
    // Anti-aliased hard-edged disc coverage / area; 0 outside the disc.
    const float cov = re - sqrtf((float)(dy * dy + dx * dx)) + 0.5f;
    if (cov <= 0.0f) return 0.0f;
    return fminf(cov, 1.0f) * INV_PI / (re * re + 1.0f / 12.0f);
}

__device__ __forceinline__ float proximity(float d) {
    // a pixel not near's weight in a near pixel's backdrop at distance d px (kernels/dof_cpu_common.py: _proximity)
    const float u = d * (1.0f / BEHIND_NEAR_PX);
    const float u2 = u * u;
    return 1.0f / (1.0f + u2 * u2);
}

__device__ __forceinline__ float srgb_to_linear(unsigned char v, float gamma) {
    return powf((float)v * (1.0f / 255.0f), gamma);
}

__device__ __forceinline__ float light(unsigned char v) {
    // colours are averaged in linear light, approximated by gamma 2 (kernels/dof.py)
    const float f = (float)v;
    return f * f;
}

__device__ __forceinline__ float pixel_coc(const float* disp, int q, float focus, float coc_scale, float coc_max) {
    // clamped: a disparity outside [0, 1] blurs like the nearest extreme, not beyond it
    return fminf(fmaxf((disp[q] - focus) * coc_scale, -coc_max), coc_max);
}

__device__ __forceinline__ float highlight_weight(const unsigned char* px, float boost, float gamma) {
    // 1 + gain * boost * u^16 on the brightest channel's linear light: a sensor clips each channel
    // (kernels/dof_reference.py: highlight_weight)
    const float inv_thr = 1.0f / (1.0f - HIGHLIGHT_THRESHOLD);
    float hw = 1.0f;
    if (boost > 0.0f) {
        const int top = max(max((int)px[0], (int)px[1]), (int)px[2]);
        const float brightest = srgb_to_linear((unsigned char)top, gamma);
        if (brightest > HIGHLIGHT_THRESHOLD) {
            const float u = (brightest - HIGHLIGHT_THRESHOLD) * inv_thr;
            const float u4 = (u * u) * (u * u);
            hw += HIGHLIGHT_GAIN * boost * ((u4 * u4) * (u4 * u4));
        }
    }
    return hw;
}

// One block of the near field's ring (kernels/dof_cpu_reduce.py: _near_ring) from the frame's edge pixels
// [y0, y1) x [x0, x1) (a run of s along one side, a corner's pixel alone), each standing for the pixels beyond it:
// the near means, coverage and narrowed radius of dof_reduce, at ring index `e`. The edge blocks had stood for what
// lies beyond the frame, so a thin blurred foreground within s px of the side was repeated outside: a dark band.
__device__ void near_ring_block(const unsigned char* img, const float* disp, int width, int y0, int y1, int x0,
                                int x1, int s, float focus, float coc_scale, float coc_max, float boost, float gamma,
                                int e, float4* ring_n, float* ring_nm, float* ring_nr) {
    float n0 = 0.f, n1 = 0.f, n2 = 0.f, nh = 0.f, nm = 0.f, nr = 0.f;
    for (int y = y0; y < y1; ++y) {
        for (int x = x0; x < x1; ++x) {
            const float c = pixel_coc(disp, y * width + x, focus, coc_scale, coc_max);
            if (c <= FOCUS_RADIUS) continue;
            const unsigned char* px = img + 3 * (y * width + x);
            const float hw = highlight_weight(px, boost, gamma);
            const float t = split_near(c, s);
            n0 += t * hw * light(px[0]); n1 += t * hw * light(px[1]); n2 += t * hw * light(px[2]);
            nh += t * hw; nm += t; nr += t * c;
        }
    }
    const float inv_n = 1.0f / (float)((y1 - y0) * (x1 - x0));
    ring_n[e] = make_float4(n0 * inv_n, n1 * inv_n, n2 * inv_n, nh * inv_n);
    ring_nm[e] = nm * inv_n;
    ring_nr[e] = nm > 0.0f ? reduced_radius(nr / nm, s) : -1.0f;
}

// One thread per s x s block: full-resolution CoC and highlight weight; per block the reduced share of far
// and near premultiplied colour, weight, coverage and mean radius (reduced px), largest small near CoC and
// far radius (gathered at full resolution by the composite); behind the near field, the colour and share of
// the pixels not near and the mean radius of all near pixels (reduced px). The near field's blocks (low_n, low_nm,
// low_nr) are written inside a ring of blocks made of the frame's edge pixels: (hl + 2) x (wl + 2).
extern "C" __global__ void dof_reduce(const unsigned char* __restrict__ img, const float* __restrict__ disp,
                                      int height, int width, int s, int far_exact, float focus, float coc_scale,
                                      float coc_max,
                                      float boost,
                                      float gamma, int hl, int wl,
                                      float* __restrict__ coc, float* __restrict__ hwt,
                                      float4* __restrict__ low_f, float* __restrict__ low_fr,
                                      float4* __restrict__ low_n, float* __restrict__ low_nm,
                                      float* __restrict__ low_nr, float* __restrict__ low_small,
                                      float* __restrict__ low_fsmall, float4* __restrict__ low_b,
                                      float* __restrict__ low_br) {
    const int bx = blockIdx.x * blockDim.x + threadIdx.x;
    const int by = blockIdx.y * blockDim.y + threadIdx.y;
    if (bx >= wl || by >= hl) return;
    const int y0 = by * s, y1 = min(y0 + s, height);
    const int x0 = bx * s, x1 = min(x0 + s, width);
    float f0 = 0.f, f1 = 0.f, f2 = 0.f, fh = 0.f, fr = 0.f;
    float n0 = 0.f, n1 = 0.f, n2 = 0.f, nh = 0.f, nm = 0.f, nr = 0.f, fm = 0.f;
    float small = -1.0f;   // largest near CoC (< s) gathered at full resolution, -1: none
    float fsmall = -1.0f;  // the same for the far field's sources
    float b0 = 0.f, b1 = 0.f, b2 = 0.f, bm = 0.f, near_count = 0.f, near_coc = 0.f;  // behind the near field
    float fr_min = 1e30f, fr_max = -1e30f;  // far radii of the reduced share
    for (int y = y0; y < y1; ++y) {
        for (int x = x0; x < x1; ++x) {
            const float c = pixel_coc(disp, y * width + x, focus, coc_scale, coc_max);
            const unsigned char* px = img + 3 * (y * width + x);
            const float hw = highlight_weight(px, boost, gamma);
            coc[y * width + x] = c;
            hwt[y * width + x] = hw;
            const float b = light(px[0]), g = light(px[1]), r = light(px[2]);
            if (c <= FOCUS_RADIUS) {
                b0 += b; b1 += g; b2 += r; bm += 1.0f;
            } else {
                near_count += 1.0f; near_coc += c;
            }
            if (c >= -FOCUS_RADIUS && c <= FOCUS_RADIUS) continue;
            if (c < 0.0f) {
                const float t = split(-c, s, far_exact);
                if (t < 1.0f && -c > fsmall) fsmall = -c;
                f0 += t * hw * b; f1 += t * hw * g; f2 += t * hw * r; fh += t * hw; fm += t; fr -= t * c;
                if (t > 0.0f) {
                    fr_min = fminf(fr_min, -c);
                    fr_max = fmaxf(fr_max, -c);
                }
            } else {
                const float t = split_near(c, s);
                if (t < 1.0f && c > small) small = c;
                n0 += t * hw * b; n1 += t * hw * g; n2 += t * hw * r; nh += t * hw; nm += t; nr += t * c;
            }
        }
    }
    const float inv_n = 1.0f / (float)((y1 - y0) * (x1 - x0));
    // The far field and what lies behind the near field skip what is outside the frame: their sums go per s x s
    // area, so a block the frame cuts weighs its own pixels only (kernels/dof_cpu_gather.py: _cut_blocks); the
    // near field continues the frame's edge: a cut block's mean stands for its part outside, the ring beyond it.
    const float inv_area = 1.0f / (float)(s * s);
    const int i = by * wl + bx;
    low_f[i] = make_float4(f0 * inv_area, f1 * inv_area, f2 * inv_area, fh * inv_area);
    // the mean radius of the reduced share, narrowed, or in a depth ramp its smallest as it is
    const float radius = fr_max - fr_min > RAMP_SPREAD * (float)s ? fr_min / (float)s
                                                                   : reduced_radius(fr / fmaxf(fm, 1e-30f), s);
    low_fr[i] = fm > 0.0f ? radius : -1.0f;
    // the near field's blocks inside their ring, (hl + 2) x (wl + 2): the edge blocks' threads fill the ring beside
    // them from the frame's edge pixels alone (near_ring_block), the corner blocks' also the corners
    const int we = wl + 2, e = (by + 1) * we + bx + 1;
    low_n[e] = make_float4(n0 * inv_n, n1 * inv_n, n2 * inv_n, nh * inv_n);
    low_nm[e] = nm * inv_n;
    low_nr[e] = nm > 0.0f ? reduced_radius(nr / nm, s) : -1.0f;  // mean radius of the reduced share, narrowed
    const int rows[2] = {by == 0 ? 0 : -1, by == hl - 1 ? height - 1 : -1};  // the frame's edge row beside it
    const int cols[2] = {bx == 0 ? 0 : -1, bx == wl - 1 ? width - 1 : -1};
    for (int k = 0; k < 2; ++k) {
        const int ey = k == 0 ? 0 : hl + 1, ex = k == 0 ? 0 : wl + 1;
        if (rows[k] >= 0)
            near_ring_block(img, disp, width, rows[k], rows[k] + 1, x0, x1, s, focus, coc_scale, coc_max, boost,
                            gamma, ey * we + bx + 1, low_n, low_nm, low_nr);
        if (cols[k] >= 0)
            near_ring_block(img, disp, width, y0, y1, cols[k], cols[k] + 1, s, focus, coc_scale, coc_max, boost,
                            gamma, (by + 1) * we + ex, low_n, low_nm, low_nr);
        for (int j = 0; j < 2; ++j)  // a corner: its pixel alone
            if (rows[k] >= 0 && cols[j] >= 0)
                near_ring_block(img, disp, width, rows[k], rows[k] + 1, cols[j], cols[j] + 1, s, focus, coc_scale,
                                coc_max, boost, gamma, ey * we + (j == 0 ? 0 : wl + 1), low_n, low_nm, low_nr);
    }
    low_small[i] = small;
    low_fsmall[i] = fsmall;
    low_b[i] = make_float4(b0 * inv_area, b1 * inv_area, b2 * inv_area, bm * inv_area);
    low_br[i] = near_count > 0.0f ? near_coc / (near_count * (float)s) : -1.0f;
}

// One thread per reduced pixel. The far gather's window is bounded by the pixel's own radius (the
// min-radius rule), the near gather's by the largest near radius in the frame (`near_reach`).
// Reduced frames are small and a window holds at most (2 * 12 + 1)^2 samples (MAX_LOW_RES_RADIUS in
// kernels/dof.py: a photo's blur, s > 5; up to (2 * 5 + 1)^2 at video sizes), so the reads stay in L1/L2. No
// buffer is sized by it: the windows are loops bounded by the radii and `near_reach`.
extern "C" __global__ void dof_gather(const float4* __restrict__ low_f, const float* __restrict__ low_fr,
                                      const float4* __restrict__ low_n, const float* __restrict__ low_nm,
                                      const float* __restrict__ low_nr, const float4* __restrict__ low_b,
                                      const float* __restrict__ low_br, int hl, int wl, int near_reach,
                                      float4* __restrict__ far_acc, float4* __restrict__ near_acc,
                                      float* __restrict__ near_a, float* __restrict__ behind_n) {
    const int px = blockIdx.x * blockDim.x + threadIdx.x;
    const int py = blockIdx.y * blockDim.y + threadIdx.y;
    if (px >= wl || py >= hl) return;
    const int i = py * wl + px;
    const float rp = low_fr[i];
    float4 a = make_float4(0.f, 0.f, 0.f, 0.f);
    if (rp >= 0.0f) {
        const float rpc = fmaxf(rp, FOCUS_RADIUS);
        const int k = min((int)ceilf(rpc + 0.5f) - 1, near_reach);  // largest offset with |o| < r + 0.5
        for (int dy = -k; dy <= k; ++dy) {
            const int qy = py + dy;
            if (qy < 0 || qy >= hl) continue;
            for (int dx = -k; dx <= k; ++dx) {
                const int qx = px + dx;
                if (qx < 0 || qx >= wl) continue;
                const int q = qy * wl + qx;
                const float rq = __ldg(low_fr + q);
                if (rq < 0.0f) continue;
                const float w = disc_weight(fmaxf(fminf(rq, rpc), FOCUS_RADIUS), dy, dx);
                if (w <= 0.0f) continue;
                const float4 v = __ldg(low_f + q);
                a.x += w * v.x; a.y += w * v.y; a.z += w * v.z; a.w += w * v.w;
            }
        }
    }
    far_acc[i] = a;
    float4 b = make_float4(0.f, 0.f, 0.f, 0.f);
    float cov = 0.0f;
    // the near blocks lie inside their ring (dof_reduce): beyond the frame, the ring's blocks made of its edge pixels
    // continue it (kernels/dof.py: borders), unlike the far field's
    for (int dy = -near_reach; dy <= near_reach; ++dy) {
        const int qe = min(max(py + dy, -1), hl) + 1;
        for (int dx = -near_reach; dx <= near_reach; ++dx) {
            const int q = qe * (wl + 2) + min(max(px + dx, -1), wl) + 1;
            const float rq = __ldg(low_nr + q);
            if (rq < 0.0f) continue;
            const float w = disc_weight(fmaxf(rq, FOCUS_RADIUS), dy, dx);
            if (w <= 0.0f) continue;
            const float4 v = __ldg(low_n + q);
            b.x += w * v.x; b.y += w * v.y; b.z += w * v.z; b.w += w * v.w;
            cov += w * __ldg(low_nm + q);
        }
    }
    near_acc[i] = b;
    near_a[i] = cov;
    // behind the near field: how much of the near pixels' mean radius the pixels not near cover (uniform weights),
    // the even coverage that fades their backdrop in; its colour is gathered per pixel in dof_composite
    float e = 0.0f;
    const float rb = low_br[i];
    if (rb >= 0.0f) {
        const float rbc = fmaxf(rb, FOCUS_RADIUS);
        const int k = min((int)ceilf(rbc + 0.5f) - 1, near_reach);
        for (int dy = -k; dy <= k; ++dy) {
            const int qy = py + dy;
            if (qy < 0 || qy >= hl) continue;
            for (int dx = -k; dx <= k; ++dx) {
                const int qx = px + dx;
                if (qx < 0 || qx >= wl) continue;
                const float w = fminf(fmaxf(rbc - sqrtf((float)(dy * dy + dx * dx)) + 0.5f, 0.0f), 1.0f);
                if (w <= 0.0f) continue;
                e += w * __ldg(low_b + qy * wl + qx).w;
            }
        }
    }
    behind_n[i] = e;
}

// A full-resolution pixel's bilinear taps on the reduced (s x s block) grid: the four blocks and their weights.
struct Taps {
    int i00, i01, i10, i11;
    float w00, w01, w10, w11;
};

__device__ __forceinline__ Taps block_taps(int y, int x, int s, int hl, int wl) {
    // Block coordinates (i + 0.5) / s - 0.5 as one correctly rounded division of integers: exact where they
    // are whole, as the CPU's must be too. As (i + 0.5f) * (1 / s) - 0.5f, nvcc's FMA contraction left 1.5e-8
    // at s = 3 or 5 where the CPU has 0, so a neighbouring block got weight and a near pixel took that
    // block's background (then taken whole above a weight of 1e-20) instead of its own colour: 38 levels off.
    const float uy = fminf(fmaxf((float)(2 * y + 1 - s) / (float)(2 * s), 0.0f), (float)(hl - 1));
    const float ux = fminf(fmaxf((float)(2 * x + 1 - s) / (float)(2 * s), 0.0f), (float)(wl - 1));
    const int y0 = (int)uy, x0 = (int)ux;
    const float fy = uy - (float)y0, fx = ux - (float)x0;
    const int y1 = min(y0 + 1, hl - 1), x1 = min(x0 + 1, wl - 1);
    Taps taps;
    taps.w00 = (1.0f - fy) * (1.0f - fx); taps.w01 = (1.0f - fy) * fx; taps.w10 = fy * (1.0f - fx); taps.w11 = fy * fx;
    taps.i00 = y0 * wl + x0; taps.i01 = y0 * wl + x1; taps.i10 = y1 * wl + x0; taps.i11 = y1 * wl + x1;
    return taps;
}

__device__ __forceinline__ float bilerp(const float* a, const Taps& t) {
    return t.w00 * __ldg(a + t.i00) + t.w01 * __ldg(a + t.i01) + t.w10 * __ldg(a + t.i10) + t.w11 * __ldg(a + t.i11);
}

__device__ __forceinline__ float4 bilerp4(const float4* a, const Taps& k) {
    const float4 p = __ldg(a + k.i00), q = __ldg(a + k.i01), r = __ldg(a + k.i10), t = __ldg(a + k.i11);
    return make_float4(k.w00 * p.x + k.w01 * q.x + k.w10 * r.x + k.w11 * t.x,
                       k.w00 * p.y + k.w01 * q.y + k.w10 * r.y + k.w11 * t.y,
                       k.w00 * p.z + k.w01 * q.z + k.w10 * r.z + k.w11 * t.z,
                       k.w00 * p.w + k.w01 * q.w + k.w10 * r.w + k.w11 * t.w);
}

__device__ __forceinline__ unsigned char to_u8(float v) {
    // back from linear light: exact on an in-focus pixel's own square
    return (unsigned char)fminf(sqrtf(fmaxf(v, 0.0f)) + 0.5f, 255.0f);
}

// One thread per full-resolution pixel, everything but the near field: far pixels take the far field (the exact
// gather of the pairs with a radius below far_exact * s plus the bilinear, support-renormalised reduced one), the
// others their own colour; into `rendered` (linear light), what lies behind the near field is gathered from
// (dof_behind_blocks, dof_composite) and what the near field composites over.
extern "C" __global__ void dof_back(const unsigned char* __restrict__ img, const float* __restrict__ coc,
                                    const float* __restrict__ hwt, int height, int width, int s, int far_exact,
                                    int hl, int wl, const float4* __restrict__ far_acc,
                                    const float* __restrict__ low_fr, const float* __restrict__ low_fsmall,
                                    float4* __restrict__ rendered) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= width || y >= height) return;
    const Taps taps = block_taps(y, x, s, hl, wl);
    const int p = y * width + x;
    const unsigned char* src = img + 3 * p;
    float o0 = light(src[0]), o1 = light(src[1]), o2 = light(src[2]);
    const float c = coc[p];
    const int by = y / s, bx = x / s;
    if (c < -FOCUS_RADIUS) {
        // Far field: the pairs (q, p) whose radius min(r_q, r_p) is below far_exact s are gathered exactly, with the
        // share 1 - t_q t_p; the reduced gather carries t_q (summed into its blocks) times t_p (applied here).
        const float rp = -c;
        const float tp = split(rp, s, far_exact);
        float g0 = 0.f, g1 = 0.f, g2 = 0.f, gh = 0.f;
        // a small far source reaches < far_exact s + 0.5 px: at most far_exact blocks away
        float reach = tp < 1.0f ? rp : -1.0f;
        if (reach < 0.0f) {
            for (int j = max(by - far_exact, 0); j <= min(by + far_exact, hl - 1); ++j)
                for (int i = max(bx - far_exact, 0); i <= min(bx + far_exact, wl - 1); ++i)
                    reach = fmaxf(reach, __ldg(low_fsmall + j * wl + i));
        }
        if (reach > 0.0f) {
            const int k = min((int)ceilf(fmaxf(reach, FOCUS_RADIUS) + 0.5f) - 1, far_exact * s + 1);
            for (int dy = -k; dy <= k; ++dy) {
                const int qy = y + dy;
                if (qy < 0 || qy >= height) continue;
                for (int dx = -k; dx <= k; ++dx) {
                    const int qx = x + dx;
                    if (qx < 0 || qx >= width) continue;
                    const int q = qy * width + qx;
                    const float cq = __ldg(coc + q);
                    if (cq >= -FOCUS_RADIUS) continue;
                    const float share = 1.0f - split(-cq, s, far_exact) * tp;
                    if (share <= 0.0f) continue;
                    const float w = disc_weight(fmaxf(fminf(-cq, rp), FOCUS_RADIUS), dy, dx) * __ldg(hwt + q) * share;
                    const unsigned char* sq = img + 3 * q;
                    g0 += w * light(sq[0]); g1 += w * light(sq[1]); g2 += w * light(sq[2]); gh += w;
                }
            }
        }
        if (tp > 0.0f) {
            // bilinear over the blocks that hold reduced far content (the others gathered nothing), so the
            // reduced sums keep their scale beside the exact ones; p's own block holds p's share
            const float support = taps.w00 * (__ldg(low_fr + taps.i00) >= 0.0f)
                                + taps.w01 * (__ldg(low_fr + taps.i01) >= 0.0f)
                                + taps.w10 * (__ldg(low_fr + taps.i10) >= 0.0f)
                                + taps.w11 * (__ldg(low_fr + taps.i11) >= 0.0f);
            const float4 f = bilerp4(far_acc, taps);
            const float ts = tp / support;
            g0 += ts * f.x; g1 += ts * f.y; g2 += ts * f.z; gh += ts * f.w;
        }
        o0 = g0 / gh; o1 = g1 / gh; o2 = g2 / gh;
    }
    rendered[p] = make_float4(o0, o1, o2, 0.0f);
}

// One thread per s x s block (a block the frame cuts: its own pixels), over its pixels not near: their mean rendered
// colour and count (blk_col: B, G, R, count) and centroid (blk_pos: row, column), summed as the CPU sums them
// (kernels/dof_cpu_composite.py: _behind_block_stats); what behind_colour takes a farther block as.
extern "C" __global__ void dof_behind_blocks(const float4* __restrict__ rendered, const float* __restrict__ coc,
                                             int height, int width, int s, int hl, int wl,
                                             float4* __restrict__ blk_col, float4* __restrict__ blk_pos) {
    const int bx = blockIdx.x * blockDim.x + threadIdx.x;
    const int by = blockIdx.y * blockDim.y + threadIdx.y;
    if (bx >= wl || by >= hl) return;
    const int y0 = by * s, y1 = min(y0 + s, height);
    const int x0 = bx * s, x1 = min(x0 + s, width);
    float b0 = 0.f, b1 = 0.f, b2 = 0.f, n = 0.f, sy = 0.f, sx = 0.f;
    for (int x = x0; x < x1; ++x) {  // each column down the block first, as the CPU sums them
        float c0 = 0.f, c1 = 0.f, c2 = 0.f, cn = 0.f, cy = 0.f;
        for (int y = y0; y < y1; ++y) {
            const int q = y * width + x;
            if (__ldg(coc + q) > FOCUS_RADIUS) continue;
            const float4 v = __ldg(rendered + q);
            c0 += v.x; c1 += v.y; c2 += v.z; cn += 1.0f; cy += (float)(y - y0);
        }
        b0 += c0; b1 += c1; b2 += c2; n += cn; sy += cy; sx += (float)(x - x0) * cn;
    }
    const float inv = 1.0f / fmaxf(n, 1.0f);
    const int i = by * wl + bx;
    blk_col[i] = make_float4(b0 * inv, b1 * inv, b2 * inv, n);
    blk_pos[i] = make_float4((float)y0 + sy * inv, (float)x0 + sx * inv, 0.0f, 0.0f);
}

// The colour behind the near pixel (y, x) of CoC c (linear light; weight 0 where nothing weighs): the rendered pixels
// not near within its disc weighed by coverage x proximity. A d^-4 weight of 1.5 px cannot be resolved by s x s
// blocks, so the blocks within exact_reach px (by their centre) are gathered pixel by pixel, farther ones as one tap
// at the centroid of their pixels not near (kernels/dof_cpu_composite.py: _behind_colour_at).
__device__ float4 behind_colour(int y, int x, float c, const float* coc, const float4* rendered,
                                const float4* blk_col, const float4* blk_pos, int height, int width, int s, int wl,
                                int exact_reach) {
    const int k = (int)ceilf(c + 0.5f) - 1;
    const float rim2 = (c + 0.5f) * (c + 0.5f);
    float b0 = 0.f, b1 = 0.f, b2 = 0.f, bw = 0.f;
    for (int by = max(y - k, 0) / s; by <= min(y + k, height - 1) / s; ++by) {
        for (int bx = max(x - k, 0) / s; bx <= min(x + k, width - 1) / s; ++bx) {
            const int i = by * wl + bx;
            const float4 col = __ldg(blk_col + i);
            if (col.w == 0.0f) continue;
            const int y0 = by * s, y1 = min(y0 + s, height), x0 = bx * s, x1 = min(x0 + s, width);
            // beyond the reach by the block's centre, in whole numbers (twice the offsets): every path decides alike
            const int ey = y0 + y1 - 1 - 2 * y, ex = x0 + x1 - 1 - 2 * x;
            if (ey * ey + ex * ex > 4 * exact_reach * exact_reach) {
                // a block whose nearest pixel lies outside the disc has its centroid there too: coverage 0, skipped
                const float gy = (float)max(max(y0 - y, y - y1 + 1), 0), gx = (float)max(max(x0 - x, x - x1 + 1), 0);
                if (gy * gy + gx * gx >= rim2) continue;
                const float4 pos = __ldg(blk_pos + i);
                const float dy = pos.x - (float)y, dx = pos.y - (float)x;
                const float dc = sqrtf(dy * dy + dx * dx);
                const float w = fminf(fmaxf(c - dc + 0.5f, 0.0f), 1.0f) * proximity(dc) * col.w;
                b0 += w * col.x; b1 += w * col.y; b2 += w * col.z; bw += w;
                continue;
            }
            // its pixels beyond the disc's window have coverage 0: skipped
            for (int qy = max(y0, y - k); qy < min(y1, y + k + 1); ++qy) {
                const float fy = (float)(qy - y);
                for (int qx = max(x0, x - k); qx < min(x1, x + k + 1); ++qx) {
                    const int q = qy * width + qx;
                    if (__ldg(coc + q) > FOCUS_RADIUS) continue;
                    const float fx = (float)(qx - x);
                    const float d = sqrtf(fy * fy + fx * fx);
                    const float w = fminf(fmaxf(c - d + 0.5f, 0.0f), 1.0f) * proximity(d);
                    const float4 v = __ldg(rendered + q);
                    b0 += w * v.x; b1 += w * v.y; b2 += w * v.z; bw += w;
                }
            }
        }
    }
    const float inv = 1.0f / fmaxf(bw, 1e-30f);
    return make_float4(b0 * inv, b1 * inv, b2 * inv, bw);
}

// One thread per full-resolution pixel: a near pixel takes what lies behind it (faded in from its own colour while
// the pixels not near cover less than BEHIND_FADE of its disc), the others their render (dof_back), then the near
// field's coverage (reduced share + exact small share) composites its colour over.
extern "C" __global__ void dof_composite(const float* __restrict__ coc, const float* __restrict__ hwt,
                                         const unsigned char* __restrict__ img, int height, int width, int s, int hl,
                                         int wl, const float4* __restrict__ near_acc, const float* __restrict__ near_a,
                                         const float* __restrict__ low_small, const float* __restrict__ behind_n,
                                         const float4* __restrict__ blk_col, const float4* __restrict__ blk_pos,
                                         int exact_reach, const float4* __restrict__ rendered,
                                         unsigned char* __restrict__ out) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= width || y >= height) return;
    const Taps taps = block_taps(y, x, s, hl, wl);
    const int p = y * width + x;
    const float4 own = __ldg(rendered + p);
    float o0 = own.x, o1 = own.y, o2 = own.z;
    const float c = coc[p];
    const int by = y / s, bx = x / s;
    float alpha = bilerp(near_a, taps);
    float n0 = 0.f, n1 = 0.f, n2 = 0.f, nh = 0.f;
    if (alpha > 0.0f) {
        const float4 n = bilerp4(near_acc, taps);
        n0 = n.x; n1 = n.y; n2 = n.z; nh = n.w;
    }
    // a small near disc (CoC below 2 s) reaches < 2 s + 0.5 px: at most two blocks away
    float small = -1.0f;
    for (int j = max(by - NEAR_EXACT, 0); j <= min(by + NEAR_EXACT, hl - 1); ++j)
        for (int i = max(bx - NEAR_EXACT, 0); i <= min(bx + NEAR_EXACT, wl - 1); ++i)
            small = fmaxf(small, __ldg(low_small + j * wl + i));
    if (small > 0.0f) {
        const int ks = min((int)ceilf(small + 0.5f) - 1, NEAR_EXACT * s + 1);
        for (int dy = -ks; dy <= ks; ++dy) {
            const int qy = min(max(y + dy, 0), height - 1);  // beyond the frame: its edge pixels again
            for (int dx = -ks; dx <= ks; ++dx) {
                const int qx = min(max(x + dx, 0), width - 1);
                const int q = qy * width + qx;
                const float cq = __ldg(coc + q);
                if (cq <= FOCUS_RADIUS) continue;
                const float share = 1.0f - split_near(cq, s);
                if (share <= 0.0f) continue;
                const float a = disc_weight(cq, dy, dx) * share;
                if (a <= 0.0f) continue;
                const float ah = a * __ldg(hwt + q);
                const unsigned char* sq = img + 3 * q;
                n0 += ah * light(sq[0]); n1 += ah * light(sq[1]); n2 += ah * light(sq[2]); nh += ah;
                alpha += a;
            }
        }
    }
    // (not where the near field covers it whole: alpha 1, what lies behind cannot show)
    if (c > FOCUS_RADIUS && !(alpha >= 1.0f && nh > 1e-20f)) {
        // what lies behind it: the rendered pixels not near within its disc, the nearer weighing more, faded in from
        // its own colour while their even coverage is below BEHIND_FADE of its disc (taken whole from any weight above
        // 0, the blocks' reach drew rectangular notches in a blurred foreground)
        float en = bilerp(behind_n, taps);
        const float t = split_near(c, s);
        if (t < 1.0f) {
            // a CoC below 2 s: the share 1 - t of its even coverage gathered exactly over its own disc (outside the
            // frame skipped), on the reduced sums' scale (kernels/dof_cpu_composite.py: _add_small_behind)
            const int k = min((int)ceilf(c + 0.5f) - 1, NEAR_EXACT * s + 1);
            float bn = 0.f;
            for (int qy = max(y - k, 0); qy <= min(y + k, height - 1); ++qy) {
                for (int qx = max(x - k, 0); qx <= min(x + k, width - 1); ++qx) {
                    const int q = qy * width + qx;
                    if (__ldg(coc + q) > FOCUS_RADIUS) continue;
                    const int dy = qy - y, dx = qx - x;
                    bn += fminf(fmaxf(c - sqrtf((float)(dy * dy + dx * dx)) + 0.5f, 0.0f), 1.0f);
                }
            }
            en = t * en + (1.0f - t) * (1.0f / (float)(s * s)) * bn;
        }
        const float total = fmaxf(en, BEHIND_FADE * PI_F / (float)(s * s) * c * c);
        if (en > 0.0f) {
            float4 e = behind_colour(y, x, c, coc, rendered, blk_col, blk_pos, height, width, s, wl, exact_reach);
            // the blocks' even coverage reaches up to ~2 s px past the disc: where it does, the colour of the nearest
            // pixels not near there (as own colour instead, a 35-level step where it begins)
            if (e.w <= 0.0f)
                e = behind_colour(y, x, c + (float)(NEAR_EXACT * s), coc, rendered, blk_col, blk_pos, height, width, s,
                                  wl, exact_reach);
            if (e.w > 0.0f) {
                const float inv = 1.0f / total;
                const float mean_k = en * inv, own_k = (total - en) * inv;
                o0 = e.x * mean_k + own_k * o0; o1 = e.y * mean_k + own_k * o1; o2 = e.z * mean_k + own_k * o2;
            }
        }
    }
    if (alpha > 0.0f && nh > 1e-20f) {
        // with the highlight boost's weight (kernels/dof_reference.py: near_alpha): exactly the coverage without one
        const float rest = 1.0f - alpha;
        alpha = alpha >= 1.0f ? 1.0f : alpha + (nh - alpha) * rest / (nh + rest);
        o0 += alpha * (n0 / nh - o0);
        o1 += alpha * (n1 / nh - o1);
        o2 += alpha * (n2 / nh - o2);
    }
    unsigned char* dst = out + 3 * p;
    dst[0] = to_u8(o0);
    dst[1] = to_u8(o1);
    dst[2] = to_u8(o2);
}
