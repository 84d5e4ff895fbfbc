# Stage 2 for people only: the `ir` prompt and the TFAs of the tiny UniRestore
# under 10*L1 on the embedded set (the multi-task stage 2 through recognizers
# is stage2_unirestore-tiny_1xb4-20it_embedded-3tasks.py).  Start from the
# stage-1 restorer that stage1_unirestore-tiny_1xb16-1k_embedded.py exports:
#   --cfg-options \
#       model.checkpoint=work_dirs/stage1_unirestore-tiny_1xb16-1k_embedded/unirestore.safetensors
_base_ = ['./stage1_unirestore-tiny_1xb16-1k_embedded.py']

model = dict(stage=2, task='ir', checkpoint=None)
