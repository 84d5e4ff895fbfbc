# The demo's restoration-only baseline: the same network, starting point (stage
# 1), trainable parts (TFAs and prompts), data, iterations and batch as the
# 3-task stage 2, but the `ir` loss (10 * L1) only: what the table's task
# prompts are compared with.
_base_ = ['./stage2_unirestore-tiny-prior_1xb32-600it_embedded-3tasks.py']

model = dict(
    recognizers=dict(_delete_=True),
    tasks=dict(_delete_=True, ir=dict(type='ir', weight=10.0)),
)
train_dataloader = dict(
    dataset=dict(
        weights=dict(_delete_=True, ir=1.0),
        datasets=dict(
            _delete_=True, ir={{_base_.train_dataloader.dataset.datasets.ir}}
        ),
    )
)
