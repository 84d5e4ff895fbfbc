# An *unseen* classifier of the demo (never used in restorer training, only to
# evaluate): mmpretrain's MobileNetV2 at half width, trained on the clean
# embedded images (10 classes).
#   python tools/train.py \
#       configs/demo/cls-unseen_mobilenet-v2-w0.5_1xb64-500it_clean-embedded.py
_base_ = ['./cls-seen_resnet18-w16-cifar_1xb64-500it_clean-embedded.py']

model = dict(
    _delete_=True,
    type='mmpretrain.ImageClassifier',
    backbone=dict(type='mmpretrain.MobileNetV2', widen_factor=0.5),
    neck=dict(type='mmpretrain.GlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=10,
        in_channels=1280,
        loss=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0),
        topk=(1,),
    ),
)
