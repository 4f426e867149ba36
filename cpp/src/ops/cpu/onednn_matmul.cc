#include "ops/cpu/onednn_matmul.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/mapped_file.h"
#include "core/parallel.h"
#include "core/scratch_buffer.h"
#include "core/weight_memory.h"
#include "nlpengine/errors.h"
#include "ops/cpu/gemm_library.h"
#include "ops/cpu/gemv_bf16_blocked.h"
#include "ops/cpu/gemv_f32_blocked.h"
#include "ops/cpu/gemv_u8s8_blocked.h"

namespace nle::ops::cpu::onednn {

namespace {

// The oneDNN 3.x C API used here, declared so that building needs no oneDNN headers:
// handles are opaque pointers, enumerations are ints (values from oneDNN 3.x's
// dnnl_types.h and dnnl_common_types.h), status 0 is success.
using Handle = void*;
using ConstHandle = const void*;
struct ExecArg {
  int arg;
  Handle memory;
};
constexpr int kEngineCpu = 1;
constexpr int kStreamDefaultFlags = 1;
constexpr int kBf16 = 2, kF32 = 3, kS32 = 4, kS8 = 5, kU8 = 6;
constexpr int kTagAny = 1, kTagAb = 3, kTagBa = 14;
constexpr int kQueryWeightsMd = 131, kQueryScratchpadMd = 136;
// dnnl_memory_desc_query's queries of a layout (dnnl_query_t) and dnnl_blocked.
constexpr int kQueryStrides = 14, kQueryNdims = 256, kQueryPaddedDims = 260, kQueryFormatKind = 262,
              kQueryInnerNblks = 263, kQueryInnerBlks = 264, kQueryInnerIdxs = 265;
constexpr int kFormatBlocked = 2;
constexpr int kScratchpadModeUser = 1;
constexpr int kArgSrc = 1, kArgDst = 17, kArgWeights = 33, kArgBias = 41,
              kArgScratchpad = 80;  // reorders: from = src, to = dst
// dnnl_alg_kind_t values of the element-wise post-ops used (dnnl_eltwise_relu = 0x20, then
// tanh, elu, square, abs, sqrt, linear, soft_relu, hardsigmoid, logistic, exp, gelu_tanh,
// swish, log, clip, clip_v2, pow, gelu_erf).
constexpr int kEltwiseRelu = 0x20, kEltwiseTanh = 0x21, kEltwiseGeluTanh = 0x2b, kEltwiseSwish = 0x2c,
              kEltwiseGeluErf = 0x31;

struct Api {
  int (*engine_create)(Handle*, int, size_t);
  int (*stream_create)(Handle*, Handle, unsigned);
  int (*stream_destroy)(Handle);
  int (*stream_wait)(Handle);
  int (*md_create_with_tag)(Handle*, int, const int64_t*, int, int);
  int (*md_clone)(Handle*, ConstHandle);
  int (*md_destroy)(Handle);
  size_t (*md_get_size)(ConstHandle);
  int (*md_query)(ConstHandle, int, void*);
  int (*md_equal)(ConstHandle, ConstHandle);
  int (*matmul_pd_create)(Handle*, Handle, ConstHandle, ConstHandle, ConstHandle, ConstHandle, ConstHandle);
  int (*reorder_pd_create)(Handle*, ConstHandle, Handle, ConstHandle, Handle, ConstHandle);
  ConstHandle (*pd_query_md)(ConstHandle, int, int);
  int (*pd_destroy)(Handle);
  int (*primitive_create)(Handle*, ConstHandle);
  int (*primitive_destroy)(Handle);
  int (*primitive_execute)(ConstHandle, Handle, int, const ExecArg*);
  int (*memory_create)(Handle*, ConstHandle, Handle, void*);
  int (*memory_destroy)(Handle);
  int (*attr_create)(Handle*);
  int (*attr_destroy)(Handle);
  int (*attr_set_scratchpad_mode)(Handle, int);
  int (*attr_set_post_ops)(Handle, ConstHandle);
  int (*post_ops_create)(Handle*);
  int (*post_ops_destroy)(Handle);
  int (*post_ops_append_eltwise)(Handle, int, float, float);
  int (*get_effective_cpu_isa)();
  Handle engine = nullptr;
};

template <typename F>
void bind(F& f, const char* name) {
  f = reinterpret_cast<F>(symbol(name));
}

const Api& api() {
  static const Api a = [] {
    Api x{};
    bind(x.engine_create, "dnnl_engine_create");
    bind(x.stream_create, "dnnl_stream_create");
    bind(x.stream_destroy, "dnnl_stream_destroy");
    bind(x.stream_wait, "dnnl_stream_wait");
    bind(x.md_create_with_tag, "dnnl_memory_desc_create_with_tag");
    bind(x.md_clone, "dnnl_memory_desc_clone");
    bind(x.md_destroy, "dnnl_memory_desc_destroy");
    bind(x.md_get_size, "dnnl_memory_desc_get_size");
    bind(x.md_query, "dnnl_memory_desc_query");
    bind(x.md_equal, "dnnl_memory_desc_equal");
    bind(x.matmul_pd_create, "dnnl_matmul_primitive_desc_create");
    bind(x.reorder_pd_create, "dnnl_reorder_primitive_desc_create");
    bind(x.pd_query_md, "dnnl_primitive_desc_query_md");
    bind(x.pd_destroy, "dnnl_primitive_desc_destroy");
    bind(x.primitive_create, "dnnl_primitive_create");
    bind(x.primitive_destroy, "dnnl_primitive_destroy");
    bind(x.primitive_execute, "dnnl_primitive_execute");
    bind(x.memory_create, "dnnl_memory_create");
    bind(x.memory_destroy, "dnnl_memory_destroy");
    bind(x.attr_create, "dnnl_primitive_attr_create");
    bind(x.attr_destroy, "dnnl_primitive_attr_destroy");
    bind(x.attr_set_scratchpad_mode, "dnnl_primitive_attr_set_scratchpad_mode");
    bind(x.attr_set_post_ops, "dnnl_primitive_attr_set_post_ops");
    bind(x.post_ops_create, "dnnl_post_ops_create");
    bind(x.post_ops_destroy, "dnnl_post_ops_destroy");
    bind(x.post_ops_append_eltwise, "dnnl_post_ops_append_eltwise");
    bind(x.get_effective_cpu_isa, "dnnl_get_effective_cpu_isa");
    if (x.engine_create(&x.engine, kEngineCpu, 0) != 0) throw Error("oneDNN: cannot create a CPU engine");
    return x;
  }();
  return a;
}

void check(int status, const std::string& what) {
  if (status != 0) throw Error("oneDNN " + what + " failed with status " + std::to_string(status));
}

// Owners that release oneDNN objects when they go out of scope.
struct Md {
  Handle h = nullptr;
  Md() = default;
  Md(const Md&) = delete;
  Md& operator=(const Md&) = delete;
  ~Md() {
    if (h) api().md_destroy(h);
  }
};
struct Pd {
  Handle h = nullptr;
  ~Pd() {
    if (h) api().pd_destroy(h);
  }
};
struct Memory {
  Handle h = nullptr;
  ~Memory() {
    if (h) api().memory_destroy(h);
  }
};
struct Primitive {
  Handle h = nullptr;
  ~Primitive() {
    if (h) api().primitive_destroy(h);
  }
};
struct Attr {
  Handle h = nullptr;
  ~Attr() {
    if (h) api().attr_destroy(h);
  }
};
struct PostOps {
  Handle h = nullptr;
  ~PostOps() {
    if (h) api().post_ops_destroy(h);
  }
};

// Appends act as oneDNN's element-wise post-op. QuickGelu and SiLU are its swish,
// x · sigmoid(alpha x).
void append_activation(Handle post_ops, Activation act) {
  int alg = 0;
  float alpha = 0.f;
  switch (act) {
    case Activation::None:
      return;
    case Activation::GeluErf:
      alg = kEltwiseGeluErf;
      break;
    case Activation::GeluTanh:
      alg = kEltwiseGeluTanh;
      break;
    case Activation::QuickGelu:
      alg = kEltwiseSwish;
      alpha = 1.702f;
      break;
    case Activation::Silu:
      alg = kEltwiseSwish;
      alpha = 1.f;
      break;
    case Activation::Relu:
      alg = kEltwiseRelu;
      break;
    case Activation::Tanh:
      alg = kEltwiseTanh;
      break;
  }
  check(api().post_ops_append_eltwise(post_ops, alg, alpha, 0.f),
        std::string("post_ops_append_eltwise (") + activation_name(act) + ")");
}

// One stream per thread (streams are not shared between threads).
Handle thread_stream() {
  struct Owner {
    Handle h = nullptr;
    ~Owner() {
      if (h) api().stream_destroy(h);
    }
  };
  thread_local Owner stream;
  if (!stream.h) check(api().stream_create(&stream.h, api().engine, kStreamDefaultFlags), "stream_create");
  return stream.h;
}

void make_md(Md& md, int64_t rows, int64_t cols, int type, int tag) {
  const int64_t dims[12] = {rows, cols};
  check(api().md_create_with_tag(&md.h, 2, dims, type, tag), "memory_desc_create");
}

// Row count of the matmul made to choose a weight's layout (the layout depends on N
// and K; one primitive per row count then takes that layout as given).
constexpr int64_t kLayoutRows = 32;

// A product of a fixed row count with a weight of a fixed layout, and its operands'
// descriptors. Its scratch memory is the caller's (a buffer per thread): with memory the
// library manages, a primitive may only run on the thread that made it.
struct RowProduct {
  Primitive primitive;
  Md src, dst, bias, scratchpad;
  size_t scratchpad_bytes = 0;
};

// The shape of an Epilogue, which a primitive is made for.
struct EpilogueKind {
  bool bias = false;
  Activation act = Activation::None;
  bool bf16_out = false;
  auto key() const { return std::make_tuple(bias, static_cast<int>(act), bf16_out); }
  bool operator<(const EpilogueKind& o) const { return key() < o.key(); }
};

// oneDNN data types and element sizes of a product's operands.
struct Types {
  int src, weights, dst;
  int64_t src_bytes, dst_bytes;
};
Types types_of(MatmulType type) {
  if (type == MatmulType::U8S8S32) return {kU8, kS8, kS32, 1, 4};
  if (type == MatmulType::F32F32F32) return {kF32, kF32, kF32, 4, 4};
  return {kBf16, kBf16, kF32, 2, 4};
}

// The products made so far, shared by every weight of a shape: a primitive depends on
// the operands' types, the weight's shape (which fixes its layout: reorder_weight asks
// for it the same way every time), the row count, the thread count oneDNN plans for and
// the epilogue, not on the weight's values. The layers of a model share their shapes:
// a batch of a new row count makes one primitive per weight shape, not per weight (4
// instead of 24 for MiniLM). Kept for the life of the process, as oneDNN's own primitive
// cache (a sweep over 121 row counts, 128 to 2,048, grew MiniLM's bf16 RSS by 4 MB less
// than primitives per weight did).
class ProductCache {
 public:
  const RowProduct& get(const Types& types, ConstHandle weight_md, int64_t n, int64_t k, int64_t rows,
                        EpilogueKind epilogue) {
    const int threads = omp_get_max_threads();  // what oneDNN plans the primitive for
    std::lock_guard<std::mutex> lock(mutex_);
    std::unique_ptr<RowProduct>& p =
        products_[{types.src, types.weights, types.dst, n, k, rows, threads, epilogue}];
    if (!p) p = make(types, weight_md, n, k, rows, epilogue);
    return *p;
  }

 private:
  static std::unique_ptr<RowProduct> make(const Types& types, ConstHandle weight_md, int64_t n, int64_t k,
                                          int64_t rows, EpilogueKind epilogue) {
    auto made = std::make_unique<RowProduct>();
    make_md(made->src, rows, k, types.src, kTagAb);
    make_md(made->dst, rows, n, epilogue.bf16_out ? kBf16 : types.dst, kTagAb);
    if (epilogue.bias) make_md(made->bias, 1, n, kF32, kTagAb);
    Attr attr;
    check(api().attr_create(&attr.h), "primitive_attr_create");
    check(api().attr_set_scratchpad_mode(attr.h, kScratchpadModeUser), "set_scratchpad_mode");
    if (epilogue.act != Activation::None) {
      PostOps post_ops;
      check(api().post_ops_create(&post_ops.h), "post_ops_create");
      append_activation(post_ops.h, epilogue.act);
      check(api().attr_set_post_ops(attr.h, post_ops.h), "primitive_attr_set_post_ops");
    }
    Pd pd;
    check(api().matmul_pd_create(&pd.h, api().engine, made->src.h, weight_md, made->bias.h, made->dst.h,
                                 attr.h),
          "matmul (" + std::to_string(rows) + " x " + std::to_string(k) + " x " + std::to_string(n) + ")");
    check(api().md_clone(&made->scratchpad.h, api().pd_query_md(pd.h, kQueryScratchpadMd, 0)),
          "memory_desc_clone");
    made->scratchpad_bytes = api().md_get_size(made->scratchpad.h);
    check(api().primitive_create(&made->primitive.h, pd.h), "matmul primitive_create");
    return made;
  }

  std::mutex mutex_;
  // by (src, weights, dst types, n, k, rows, threads, epilogue)
  std::map<std::tuple<int, int, int, int64_t, int64_t, int64_t, int, EpilogueKind>,
           std::unique_ptr<RowProduct>>
      products_;
};

ProductCache& product_cache() {
  static ProductCache* cache = new ProductCache;  // never destroyed: threads may still run at exit
  return *cache;
}

// A weight in the primitive's layout.
struct Weight {
  Types types{};
  Md md;  // the layout
  std::shared_ptr<void> buffer;  // allocate_weight_memory
  int64_t n = 0, k = 0;
  // Where the layout is the one gemv_f32_blocked reads (float32 weights), the floats from
  // one block of its columns to the next; else 0.
  int64_t gemv_block_stride = 0;

  const RowProduct& product(int64_t rows, EpilogueKind epilogue) const {
    return product_cache().get(types, md.h, n, k, rows, epilogue);
  }
};

void execute(Handle primitive, std::initializer_list<ExecArg> args) {
  const Handle stream = thread_stream();
  check(api().primitive_execute(primitive, stream, static_cast<int>(args.size()), args.begin()), "execute");
  check(api().stream_wait(stream), "stream_wait");
}

int64_t round_up_chunk(int64_t rows) {
  return rows <= kExactRows ? rows : (rows + kRowStep - 1) / kRowStep * kRowStep;
}

}  // namespace

int64_t padded_rows(int64_t m) {
  const int64_t full = m / kChunkRows * kChunkRows;
  return full + round_up_chunk(m - full);
}

namespace {
// What oneDNN offers for a product on this CPU, probed once per type with a matmul of
// MiniLM's feed-forward shape.
struct Support {
  bool implemented = false;  // a matmul primitive exists
  bool own_layout = false;   // it takes the weight in a layout of its own
};
const Support& support(MatmulType type) {
  static std::once_flag once[3];
  static Support support[3];
  const int i = static_cast<int>(type);
  std::call_once(once[i], [&] {
    const Types t = types_of(type);
    constexpr int64_t k = 384, n = 1536;
    Md src, any, dst;
    make_md(src, kLayoutRows, k, t.src, kTagAb);
    make_md(any, k, n, t.weights, kTagAny);
    make_md(dst, kLayoutRows, n, t.dst, kTagAb);
    Pd pd;
    if (api().matmul_pd_create(&pd.h, api().engine, src.h, any.h, nullptr, dst.h, nullptr) != 0) return;
    support[i].implemented = true;
    Md ab, ba;
    make_md(ab, k, n, t.weights, kTagAb);
    make_md(ba, k, n, t.weights, kTagBa);
    const ConstHandle chosen = api().pd_query_md(pd.h, kQueryWeightsMd, 0);
    support[i].own_layout = api().md_equal(chosen, ab.h) == 0 && api().md_equal(chosen, ba.h) == 0;
  });
  return support[i];
}
}  // namespace

bool implemented(MatmulType type) { return support(type).implemented; }
bool packs_weights(MatmulType type) { return support(type).own_layout; }

namespace {
// The elements from one column block to the next where md, the layout oneDNN chose for a
// (K, N) weight, is the one the few-row kernels read; 0 for any other layout. Read from
// the descriptor's blocking, not from the name of its format: blocks of 64 columns, each
// K rows in groups of g consecutive rows (a group's 64 columns × g elements one after
// another), in blocks of depth_block rows: float32 BA16a64b (g = 1, ops/cpu/gemv_f32_blocked.h),
// bf16 BA16a64b2a (g = 2, ops/cpu/gemv_bf16_blocked.h), int8 BA16a64b4a (g = 4,
// ops/cpu/gemv_u8s8_blocked.h).
int64_t gemv_block_stride(ConstHandle md, MatmulType type, int64_t k) {
  int64_t depth_block = 0, group = 0;
  const int64_t columns = kGemvColumnBlock;
  static_assert(kGemvColumnBlock == kGemvBf16ColumnBlock && kGemvColumnBlock == kGemvS8ColumnBlock,
                "one column block for every type");
  switch (type) {
    case MatmulType::F32F32F32:
      depth_block = kGemvDepthBlock;
      group = 1;
      break;
    case MatmulType::BF16BF16F32:
      depth_block = kGemvBf16DepthBlock;
      group = kGemvBf16Pair;
      break;
    case MatmulType::U8S8S32:
      depth_block = kGemvS8DepthBlock;
      group = kGemvS8Group;
      break;
  }
  int ndims = 0, format = 0, nblks = 0;
  const int64_t *strides = nullptr, *padded = nullptr, *blks = nullptr, *idxs = nullptr;
  const Api& dnnl = api();
  if (dnnl.md_query(md, kQueryNdims, &ndims) != 0 || ndims != 2 ||
      dnnl.md_query(md, kQueryFormatKind, &format) != 0 || format != kFormatBlocked ||
      dnnl.md_query(md, kQueryInnerNblks, &nblks) != 0 || dnnl.md_query(md, kQueryInnerBlks, &blks) != 0 ||
      dnnl.md_query(md, kQueryInnerIdxs, &idxs) != 0 || dnnl.md_query(md, kQueryStrides, &strides) != 0 ||
      dnnl.md_query(md, kQueryPaddedDims, &padded) != 0 || !blks || !idxs || !strides || !padded)
    return 0;
  const bool inner =
      group == 1 ? nblks == 2 && blks[0] == depth_block && idxs[0] == 0 && blks[1] == columns && idxs[1] == 1
                 : nblks == 3 && blks[0] == depth_block / group && idxs[0] == 0 && blks[1] == columns &&
                       idxs[1] == 1 && blks[2] == group && idxs[2] == 0;
  const bool blocked = inner && strides[0] == depth_block * columns && padded[0] % depth_block == 0 &&
                       padded[0] >= k && padded[1] % columns == 0 && strides[1] >= padded[0] * columns;
  return blocked ? strides[1] : 0;
}
}  // namespace

namespace {
// The layout oneDNN picks for an (N, K) weight of this type ("any" format) into md.
void weight_layout(Md& md, const Types& types, int64_t n, int64_t k) {
  Md src, any, dst;
  make_md(src, kLayoutRows, k, types.src, kTagAb);
  make_md(any, k, n, types.weights, kTagAny);
  make_md(dst, kLayoutRows, n, types.dst, kTagAb);
  Pd pd;
  check(api().matmul_pd_create(&pd.h, api().engine, src.h, any.h, nullptr, dst.h, nullptr),
        "matmul for a (" + std::to_string(n) + ", " + std::to_string(k) + ") weight");
  check(api().md_clone(&md.h, api().pd_query_md(pd.h, kQueryWeightsMd, 0)), "memory_desc_clone");
}

// Reorders the (N, K) weight (plain, row-major) into the layout md at `to`.
void reorder_into(void* to, ConstHandle md, const void* weight, const Types& types, int64_t n, int64_t k) {
  Memory into;
  check(api().memory_create(&into.h, md, api().engine, to), "memory_create");
  // The weight is (N, K) row-major: as the (K, N) matrix of the product, its layout is "ba".
  Md plain;
  make_md(plain, k, n, types.weights, kTagBa);
  Memory from;
  check(api().memory_create(&from.h, plain.h, api().engine, const_cast<void*>(weight)), "memory_create");
  Pd pd;
  check(api().reorder_pd_create(&pd.h, plain.h, api().engine, md, api().engine, nullptr), "reorder");
  Primitive reorder;
  check(api().primitive_create(&reorder.h, pd.h), "reorder primitive_create");
  execute(reorder.h, {{kArgSrc, from.h}, {kArgDst, into.h}});
}

// Bytes of a float32 weight reordered at a time by reorder_in_parts.
constexpr int64_t kReorderPartBytes = 4 << 20;

// Reorders a float32 (N, K) weight whose layout (md, `bytes` at `to`) is the blocked one
// that gemv_f32_blocked reads — blocks of kGemvColumnBlock columns one after the other,
// block_stride floats apart — kReorderPartBytes of its rows at a time, each part's
// memory-mapped pages given back as it is done (release_mapped_pages; other memory is left
// alone). Reordered whole, a tied LM head's float32 pages stayed resident beside its
// reordered copy until the end, the peak of a generating process (bart-base's 50,265 x 768
// head: peak RSS 749 MB, against 590 after the first call). Each part is reordered into
// the layout oneDNN picks for a weight of its own rows; where that is not the same blocks
// at the same stride, or the parts do not tile the buffer, nothing is reordered and false
// returned (the caller reorders the weight whole). Parts of equal size share one reorder
// primitive (oneDNN's cache), so a weight costs at most two.
bool reorder_in_parts(void* to, ConstHandle md, size_t bytes, int64_t block_stride, const float* weight,
                      const Types& types, int64_t n, int64_t k) {
  const int64_t columns = kGemvColumnBlock;
  if (block_stride <= 0) return false;
  const int64_t rows = std::max<int64_t>(1, kReorderPartBytes / (k * static_cast<int64_t>(sizeof(float))));
  const int64_t part = (rows + columns - 1) / columns * columns;
  const int64_t blocks = (n + columns - 1) / columns;
  if (part >= n || bytes != static_cast<size_t>(blocks * block_stride) * sizeof(float)) return false;
  const int64_t tail = n % part;
  Md part_md, tail_md;
  weight_layout(part_md, types, part, k);
  if (gemv_block_stride(part_md.h, MatmulType::F32F32F32, k) != block_stride ||
      api().md_get_size(part_md.h) != static_cast<size_t>(part / columns * block_stride) * sizeof(float))
    return false;
  if (tail) {
    weight_layout(tail_md, types, tail, k);
    if (gemv_block_stride(tail_md.h, MatmulType::F32F32F32, k) != block_stride ||
        api().md_get_size(tail_md.h) !=
            static_cast<size_t>((tail + columns - 1) / columns * block_stride) * sizeof(float))
      return false;
  }
  for (int64_t n0 = 0; n0 < n; n0 += part) {
    const int64_t cols = std::min(part, n - n0);
    const float* rows_from = weight + n0 * k;
    reorder_into(static_cast<float*>(to) + n0 / columns * block_stride, cols == part ? part_md.h : tail_md.h,
                 rows_from, types, cols, k);
    release_mapped_pages(rows_from, static_cast<size_t>(cols * k) * sizeof(float));
  }
  return true;
}
}  // namespace

std::shared_ptr<void> reorder_weight(const void* weight, MatmulType type, int64_t n, int64_t k) {
  auto w = std::make_shared<Weight>();
  w->types = types_of(type);
  w->n = n;
  w->k = k;
  weight_layout(w->md, w->types, n, k);
  const size_t bytes = api().md_get_size(w->md.h);
  w->buffer = allocate_weight_memory(bytes);
  if (!w->buffer)
    throw Error("out of memory reordering a weight for oneDNN (" + std::to_string(bytes) + " bytes)");
  const bool blocked = (type == MatmulType::F32F32F32 && gemv_f32_blocked_available()) ||
                       (type == MatmulType::BF16BF16F32 && gemv_bf16_blocked_available()) ||
                       (type == MatmulType::U8S8S32 && gemv_u8s8_blocked_available());
  if (blocked) w->gemv_block_stride = gemv_block_stride(w->md.h, type, k);
  if (type != MatmulType::F32F32F32 ||
      !reorder_in_parts(w->buffer.get(), w->md.h, bytes, w->gemv_block_stride,
                        static_cast<const float*>(weight), w->types, n, k))
    reorder_into(w->buffer.get(), w->md.h, weight, w->types, n, k);
  return w;
}

namespace {
// The most rows an int8 product runs in gemv_u8s8s32_blocked. Where oneDNN multiplies int8
// with AMX (its effective ISA holds avx512_core_amx's bits: the CPU has AMX and
// ONEDNN_MAX_CPU_ISA allows it), the primitive's tiles of 16 rows beat the VNNI kernel
// past a few rows: MiniLM int8, one sentence of 32 tokens, Sapphire Rapids, ms at 1 / 2
// threads: kernel up to 64 rows 1.71 / 1.17, up to 4 rows 1.28 / 0.99, never 1.28 / 1.01.
constexpr int64_t kGemvS8MaxRowsBesideAmx = 4;
int64_t int8_kernel_max_rows() {
  static const int64_t rows = [] {
    constexpr int kIsaAvx512CoreAmx = 0xfef;  // dnnl_cpu_isa_avx512_core_amx
    const bool amx = (api().get_effective_cpu_isa() & kIsaAvx512CoreAmx) == kIsaAvx512CoreAmx;
    return amx ? kGemvS8MaxRowsBesideAmx : kGemvS8MaxRows;
  }();
  return rows;
}
}  // namespace

bool few_rows_read_directly(const void* w) { return static_cast<const Weight*>(w)->gemv_block_stride > 0; }

void matmul(void* c, const void* a, const void* weight, int64_t m, int64_t n, int64_t k, bool a_padded,
            bool c_padded, const Epilogue& epilogue) {
  auto* w = static_cast<Weight*>(const_cast<void*>(weight));
  const EpilogueKind kind{epilogue.bias != nullptr, epilogue.act, epilogue.bf16_out};
  if ((kind.bias || kind.act != Activation::None || kind.bf16_out) && w->types.dst != kF32)
    throw Error("onednn::matmul: an epilogue needs float32 results");
  if (kind.bf16_out && w->types.src != kBf16) throw Error("onednn::matmul: bf16 results need bf16 inputs");
  // A decoding step's few rows: bound by reading the weight, which the primitive does
  // more slowly (ops/cpu/gemv_f32_blocked.h, gemv_bf16_blocked.h, gemv_u8s8_blocked.h).
  if (m > 0 && w->gemv_block_stride > 0) {
    if (w->types.src == kF32 && m <= kGemvMaxRows) {
      gemv_f32_blocked(static_cast<float*>(c), static_cast<const float*>(a),
                       static_cast<const float*>(w->buffer.get()), m, n, k, w->gemv_block_stride,
                       epilogue.bias, epilogue.act);
      return;
    }
    if (w->types.src == kBf16 && m <= kGemvBf16MaxRows) {
      gemv_bf16_blocked(c, static_cast<const uint16_t*>(a), static_cast<const uint16_t*>(w->buffer.get()), m,
                        n, k, w->gemv_block_stride, epilogue.bias, epilogue.act, epilogue.bf16_out);
      return;
    }
    if (w->types.src == kU8 && m <= int8_kernel_max_rows()) {
      gemv_u8s8s32_blocked(static_cast<int32_t*>(c), static_cast<const uint8_t*>(a),
                           static_cast<const int8_t*>(w->buffer.get()), m, n, k, w->gemv_block_stride);
      return;
    }
  }
  const int64_t c_bytes = kind.bf16_out ? 2 : w->types.dst_bytes;
  thread_local ScratchBuffer<uint8_t> scratch_buffer, padded_a_buffer, padded_c_buffer;
  // Rows [first, first + real) through the primitive made for `rows` (>= real) rows, the
  // padding rows of a and c copied through buffers of their own where the caller's do
  // not hold them.
  auto run = [&](int64_t first, int64_t real, int64_t rows) {
    const RowProduct& p = w->product(rows, kind);
    uint8_t* scratch = scratch_buffer.get(p.scratchpad_bytes);
    const auto* a_rows = static_cast<const uint8_t*>(a) + first * k * w->types.src_bytes;
    auto* c_rows = static_cast<uint8_t*>(c) + first * n * c_bytes;
    if (rows != real && !a_padded) {  // the rows, then zeros
      const size_t row_bytes = static_cast<size_t>(k * w->types.src_bytes);
      uint8_t* padded_a = padded_a_buffer.get(static_cast<size_t>(rows) * row_bytes);
      std::memcpy(padded_a, a_rows, static_cast<size_t>(real) * row_bytes);
      std::memset(padded_a + real * row_bytes, 0, static_cast<size_t>(rows - real) * row_bytes);
      a_rows = padded_a;
    }
    const bool c_through_buffer = rows != real && !c_padded;
    uint8_t* dst_rows =
        c_through_buffer ? padded_c_buffer.get(static_cast<size_t>(rows * n * c_bytes)) : c_rows;
    // Memory objects are made per call: none is shared between threads.
    Memory src, weights, dst, bias_memory, scratchpad;
    check(api().memory_create(&src.h, p.src.h, api().engine, const_cast<uint8_t*>(a_rows)), "memory_create");
    check(api().memory_create(&weights.h, w->md.h, api().engine, w->buffer.get()), "memory_create");
    check(api().memory_create(&dst.h, p.dst.h, api().engine, dst_rows), "memory_create");
    check(api().memory_create(&scratchpad.h, p.scratchpad.h, api().engine, scratch), "memory_create");
    if (epilogue.bias) {
      check(api().memory_create(&bias_memory.h, p.bias.h, api().engine, const_cast<float*>(epilogue.bias)),
            "memory_create");
      execute(p.primitive.h, {{kArgSrc, src.h},
                              {kArgWeights, weights.h},
                              {kArgBias, bias_memory.h},
                              {kArgDst, dst.h},
                              {kArgScratchpad, scratchpad.h}});
    } else {
      execute(p.primitive.h,
              {{kArgSrc, src.h}, {kArgWeights, weights.h}, {kArgDst, dst.h}, {kArgScratchpad, scratchpad.h}});
    }
    if (c_through_buffer) std::memcpy(c_rows, dst_rows, static_cast<size_t>(real * n * c_bytes));
  };
  static_assert(kRowStep <= kExactRows + 1, "the rows past the last whole step must run exactly");
  const int64_t weight_bytes = n * k * w->types.src_bytes;
  // Rows [begin, end) in chunks cut at whole multiples of kChunkRows, as padded_rows(m)
  // counts them: where end == m, the last chunk's padding rows are the caller's (begin and
  // any other end are multiples of kThreadRowStep, so no other chunk is padded).
  auto run_rows = [&](int64_t begin, int64_t end) {
    for (int64_t first = begin, next; first < end; first = next) {
      next = std::min(end, (first / kChunkRows + 1) * kChunkRows);
      const int64_t real = next - first;
      const int64_t rows = round_up_chunk(real);
      const int64_t copied_bytes =
          real * ((a_padded ? 0 : k * w->types.src_bytes) + (c_padded ? 0 : n * c_bytes));
      if (rows == real || copied_bytes * kSplitCopyFraction < weight_bytes) {
        run(first, real, rows);
        continue;
      }
      // The rows filling whole steps as one product and the rest (fewer than kRowStep) as
      // another, each through a primitive of its own exact rows: no copies, but the weight
      // read twice.
      const int64_t body = real / kRowStep * kRowStep;
      run(first, body, body);
      run(first + body, real - body, real - body);
    }
  };
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads < 2 || m < threads * kThreadRowsMin || w->types.src == kF32) {
    run_rows(0, m);
    return;
  }
  // Many rows: each thread multiplies an equal share of them through a one-thread
  // primitive (the primitive's own split leaves threads idle, see kThreadRowsMin). Shares
  // are whole multiples of kThreadRowStep rows, so no share but the last has padding rows
  // that belong to the next.
  const int64_t share = (m + threads - 1) / threads;
  const int64_t step = (share + kThreadRowStep - 1) / kThreadRowStep * kThreadRowStep;
  std::exception_ptr failure;
  std::mutex failure_mutex;
#pragma omp parallel num_threads(threads)
  {
    const int64_t begin = std::min<int64_t>(m, omp_get_thread_num() * step);
    const int64_t end = std::min<int64_t>(m, begin + step);
    try {
      if (begin < end) {
        const ThreadScope one_thread(1);
        run_rows(begin, end);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace nle::ops::cpu::onednn
