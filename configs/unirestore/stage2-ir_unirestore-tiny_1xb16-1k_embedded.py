# Stage 2 for people only: the `ir` prompt and the TFAs of the tiny UniRestore under 10*L1 on the embedded set
# (the multi-task stage 2 with recognizers is configs/unirestore/stage2*.py).  Start from a stage-1 restorer:
# --cfg-options model.checkpoint=work_dirs/unirestore-tiny_stage1_1xb16-1k_embedded/iter_1000.pth
_base_ = ['./unirestore-tiny_stage1_1xb16-1k_embedded.py']

model = dict(stage=2, task='ir', checkpoint=None)
