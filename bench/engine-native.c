/*
 * Batched greedy decoding straight on libllama, with the settings the engine uses (F32 KV
 * cache, flash attention off, one stream per sequence), to compare node-llama-cpp's
 * throughput with llama.cpp's own on the same file and the same shared libraries.
 *
 * usage: engine-native BACKENDS_DIR MODEL.gguf N_SEQ N_GEN PROMPT_LEN THREADS
 * prints the best generated tokens/s of three runs (prompt processing included).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "llama.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void quiet(enum ggml_log_level level, const char *text, void *user) {
  (void)level;
  (void)text;
  (void)user;
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: %s BACKENDS_DIR MODEL N_SEQ N_GEN PROMPT_LEN THREADS\n", argv[0]);
    return 2;
  }
  const int n_seq = atoi(argv[3]), n_gen = atoi(argv[4]), n_prompt = atoi(argv[5]);
  const int threads = atoi(argv[6]);
  llama_log_set(quiet, NULL);
  ggml_backend_load_all_from_path(argv[1]);
  llama_backend_init();

  struct llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  struct llama_model *model = llama_model_load_from_file(argv[2], mp);
  if (!model) {
    fprintf(stderr, "could not load %s\n", argv[2]);
    return 1;
  }
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

  struct llama_context_params cp = llama_context_default_params();
  cp.n_ctx = (n_prompt + n_gen + 8) * n_seq;
  cp.n_batch = cp.n_ubatch = 512;
  cp.n_seq_max = n_seq;
  cp.n_threads = cp.n_threads_batch = threads;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.type_k = GGML_TYPE_F32;
  cp.type_v = GGML_TYPE_F32;
  struct llama_context *ctx = llama_init_from_model(model, cp);
  if (!ctx) {
    fprintf(stderr, "could not create a context\n");
    return 1;
  }
  const int cap = n_seq * n_prompt > 512 ? n_seq * n_prompt : 512;
  struct llama_batch batch = llama_batch_init(cap, 0, 1);
  int *last = calloc(n_seq, sizeof(int));
  double best = 0;
  for (int rep = 0; rep < 3; rep++) {
    llama_memory_clear(llama_get_memory(ctx), true);
    const double t0 = now();
    batch.n_tokens = 0;
    for (int s = 0; s < n_seq; s++) {
      for (int i = 0; i < n_prompt; i++) {
        const int k = batch.n_tokens++;
        batch.token[k] = i == 0 ? 1 : 300 + (s * 7 + i) % 50;
        batch.pos[k] = i;
        batch.n_seq_id[k] = 1;
        batch.seq_id[k][0] = s;
        batch.logits[k] = i == n_prompt - 1;
      }
    }
    if (llama_decode(ctx, batch)) return 1;
    long generated = 0;
    for (int step = 0; step < n_gen; step++) {
      for (int s = 0; s < n_seq; s++) {
        const float *lg = llama_get_logits_ith(ctx, step == 0 ? (s + 1) * n_prompt - 1 : s);
        int b = 0;
        for (int v = 1; v < n_vocab; v++)
          if (lg[v] > lg[b]) b = v;
        last[s] = b;
        generated++;
      }
      if (step == n_gen - 1) break;
      batch.n_tokens = 0;
      for (int s = 0; s < n_seq; s++) {
        const int k = batch.n_tokens++;
        batch.token[k] = last[s];
        batch.pos[k] = n_prompt + step;
        batch.n_seq_id[k] = 1;
        batch.seq_id[k][0] = s;
        batch.logits[k] = 1;
      }
      if (llama_decode(ctx, batch)) return 1;
    }
    const double tps = generated / (now() - t0);
    if (tps > best) best = tps;
  }
  printf("%.1f\n", best);
  free(last);
  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
