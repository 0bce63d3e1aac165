# The smolcluster native addon (see docs/NATIVE.md).
# Kernel libraries are probed at configure time by scripts/detect-native-libs.mjs:
#   oneDNN present   -> SC_HAVE_DNNL: gemm (matmul primitive / dnnl_sgemm) and convolution.
#   else BLAS        -> SC_HAVE_CBLAS: cblas_sgemm (OpenBLAS; Accelerate on macOS), im2col conv.
#   else             -> our cache-blocked C++ gemm.
# OpenMP (when the compiler has it) parallelises our own loops and is oneDNN's runtime here.
# No -march=native: the binary may move between machines; libraries dispatch on the CPU at run
# time and our few hot loops carry an AVX2 clone (src/native/simd.h).
{
  'variables': {
    'sc_dnnl%': '<!(node scripts/detect-native-libs.mjs dnnl)',
    'sc_cblas%': '<!(node scripts/detect-native-libs.mjs cblas)',
    'sc_openmp%': '<!(node scripts/detect-native-libs.mjs openmp)',
  },
  'targets': [
    {
      'target_name': 'smolcluster',
      'sources': [
        'src/native/module.cc',
        'src/native/cpu_features.cc',
        'src/native/napi_args.cc',
        'src/native/threads.cc',
        'src/native/dnnl_context.cc',
        'src/native/gemm.cc',
        'src/native/gemm_dnnl.cc',
        'src/native/gemm_blocked.cc',
        'src/native/gemm_thin.cc',
        'src/native/gemm_thin_neon.cc',
        'src/native/elementwise.cc',
        'src/native/layout.cc',
        'src/native/reduce.cc',
        'src/native/row_argmax.cc',
        'src/native/softmax.cc',
        'src/native/conv.cc',
        'src/native/conv_dnnl.cc',
        'src/native/conv_im2col.cc',
        'src/native/pool.cc',
        'src/native/pool_dnnl.cc',
        'src/native/norm.cc',
        'src/native/embedding.cc',
        'src/native/optim.cc',
        'src/native/attention.cc',
        'src/native/attention_bf16.cc',
        'src/native/attention_decode.cc',
        'src/native/attention_decode_neon.cc',
        'src/native/shm.cc',
        'src/native/file_map.cc',
        'src/native/memory.cc',
        'src/native/bf16.cc',
        'src/native/gemv_bf16.cc',
        'src/native/gemv_bf16_amx.cc',
        'src/native/gemv_bf16_neon.cc',
        'src/native/linear_widened.cc',
        'src/native/gemm_bf16_packed.cc',
        'src/native/llama.cc',
        'src/native/llama_decode.cc',
        'src/native/quant_dequant.cc',
        'src/native/quant_dot_generic.cc',
        'src/native/quant_dot_x86.cc',
        'src/native/quant_dot_neon.cc',
        'src/native/quant_rows_avx512.cc',
        'src/native/quant_rows8.cc',
        'src/native/quant_rows8_avx512.cc',
        'src/native/quant_rows8_k_avx512.cc',
        'src/native/quant_rows8_q6k_avx512.cc',
        'src/native/quant_linear.cc',
        'src/native/quant_quantize.cc',
        'src/native/quant_fit_avx2.cc',
        'src/native/quant_fit_neon.cc',
        'src/native/quant_tiles_bf16.cc',
        'src/native/quant_tiles_int8.cc',
        'src/native/quant_tiles_int8_neon.cc',
      ],
      'defines': ['NAPI_VERSION=8'],
      # C++ exceptions are on throughout: oneDNN's C++ API reports errors by throwing, and our
      # argument checks throw too; every N-API entry point catches (src/native/napi_args.h).
      'cflags!': ['-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions', '-fno-rtti'],
      # -fno-math-errno: sqrt/exp never set errno here, and without it GCC cannot vectorise sqrt (it
      # keeps a scalar call through the PLT for the errno path). -fno-trapping-math: no FP exception
      # is ever unmasked, so selects on float compares may be if-converted (vexp in vmath.h needs it
      # to vectorise). Neither changes a computed value.
      'cflags_cc': ['-std=c++17', '-O3', '-fexceptions', '-fno-math-errno', '-fno-trapping-math', '-Wall', '-Wno-unknown-pragmas'],
      'xcode_settings': {
        'GCC_ENABLE_CPP_EXCEPTIONS': 'YES',
        'GCC_ENABLE_CPP_RTTI': 'YES',
        'CLANG_CXX_LANGUAGE_STANDARD': 'c++17',
        'MACOSX_DEPLOYMENT_TARGET': '11.0',
        'OTHER_CPLUSPLUSFLAGS': ['-O3', '-fexceptions', '-fno-math-errno', '-fno-trapping-math', '-Wno-unknown-pragmas'],
      },
      'msvs_settings': {
        'VCCLCompilerTool': { 'ExceptionHandling': 1, 'AdditionalOptions': ['/O2', '/std:c++17'] },
      },
      'conditions': [
        ['OS!="win"', {
          # Lets `#pragma omp simd reduction` vectorise float sums even without the OpenMP runtime.
          'cflags_cc': ['-fopenmp-simd'],
          'xcode_settings': { 'OTHER_CPLUSPLUSFLAGS': ['-fopenmp-simd'] },
        }],
        # shm_open lives in librt before glibc 2.34 (src/native/shm.cc).
        # RPATH $ORIGIN: the prebuilt addon (scripts/prebuild.mjs) finds the oneDNN, libgomp and
        # libOpenCL copied beside it before the system's. DT_RPATH, not DT_RUNPATH
        # (--disable-new-dtags), because only DT_RPATH is also searched for the libraries' own
        # dependencies (libdnnl's libOpenCL) and ahead of LD_LIBRARY_PATH. A build from source has
        # no libraries beside it and resolves them from the system as before.
        ['OS=="linux"', {
          'libraries': ['-lrt'],
          'ldflags': ["-Wl,-rpath,'$$ORIGIN'", '-Wl,--disable-new-dtags'],
        }],
        ['sc_dnnl==1', {
          'defines': ['SC_HAVE_DNNL'],
          'libraries': ['-ldnnl'],
        }],
        # With oneDNN present BLAS is not linked: its GEMM is slower here, and a second thread
        # pool (OpenBLAS's) would contend with oneDNN's OpenMP team.
        ['sc_dnnl!=1 and sc_cblas==1 and OS=="mac"', {
          'defines': ['SC_HAVE_CBLAS', 'SC_BLAS_ACCELERATE'],
          'libraries': ['-framework Accelerate'],
        }],
        ['sc_dnnl!=1 and sc_cblas==1 and OS!="mac"', {
          'defines': ['SC_HAVE_CBLAS', 'SC_BLAS_OPENBLAS'],
          'libraries': ['-lopenblas'],
        }],
        ['sc_openmp==1', {
          'defines': ['SC_HAVE_OPENMP'],
          'cflags_cc': ['-fopenmp'],
          'ldflags': ['-fopenmp'],
          'xcode_settings': { 'OTHER_CPLUSPLUSFLAGS': ['-fopenmp'], 'OTHER_LDFLAGS': ['-fopenmp'] },
        }],
      ],
    },
  ],
}
