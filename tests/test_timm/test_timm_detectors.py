"""glmix_mm.timm's GLNet-4G in the detectors outside OpenMMLab that take timm backbones:
torchvision's Mask R-CNN (c2-c5 through torchvision's FPN) trains a step on the demo data and
predicts; Hugging Face transformers' ``TimmBackbone`` builds it by name and DETR runs on it."""
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as nn

timm = pytest.importorskip('timm', reason='timm is not installed (pip install -e ".[timm]")')
import glmix_mm.timm  # noqa: E402,F401 (registers the models)
from fakes import random_upstream_checkpoint  # noqa: E402

GLNET_4G_CHANNELS = [64, 128, 256, 512]


class TimmFPN(nn.Module):
    """A timm ``features_only`` model with torchvision's FPN on its maps: the backbone that
    torchvision's detectors take (docs/timm.md)."""

    def __init__(self, name: str, out_channels: int = 256, **kwargs) -> None:
        super().__init__()
        from torchvision.ops.feature_pyramid_network import (FeaturePyramidNetwork,
                                                             LastLevelMaxPool)
        self.body = timm.create_model(name, features_only=True, **kwargs)
        self.fpn = FeaturePyramidNetwork(self.body.feature_info.channels(), out_channels,
                                         extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> 'OrderedDict[str, torch.Tensor]':
        return self.fpn(OrderedDict((str(i), m) for i, m in enumerate(self.body(x))))


def demo_batch(demo_data, split: str = 'train', size: int = 2):
    """Images and Mask R-CNN targets (boxes, labels, masks) of the demo COCO split.

    Read with pycocotools: torchvision 0.16's COCO wrapper (``wrap_dataset_for_transforms_v2``,
    the oldest stack's) fails on compressed RLE masks, the demo's.
    """
    from PIL import Image
    from pycocotools.coco import COCO
    from torchvision.transforms.functional import to_tensor
    root = demo_data / 'coco'
    coco = COCO(str(root / 'annotations' / f'instances_{split}.json'))
    images, targets = [], []
    for image_id in sorted(coco.imgs)[:size]:
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        boxes = torch.tensor([a['bbox'] for a in annotations], dtype=torch.float32)
        boxes[:, 2:] += boxes[:, :2]  # (x, y, w, h) -> (x1, y1, x2, y2)
        masks = np.stack([coco.annToMask(a) for a in annotations])
        image = Image.open(root / split / coco.imgs[image_id]['file_name']).convert('RGB')
        images.append(to_tensor(image))
        targets.append(dict(boxes=boxes, masks=torch.from_numpy(masks),
                            labels=torch.tensor([a['category_id'] for a in annotations])))
    return images, targets, len(coco.cats) + 1


def test_torchvision_mask_rcnn_trains_a_step_and_predicts(demo_data):
    from torchvision.models.detection import MaskRCNN
    images, targets, num_classes = demo_batch(demo_data)
    torch.manual_seed(0)
    backbone = TimmFPN('glnet_4g', out_channels=64)
    assert backbone.body.feature_info.channels() == GLNET_4G_CHANNELS
    model = MaskRCNN(backbone, num_classes=num_classes, min_size=64, max_size=64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    first_stage = next(backbone.body.model.stages[0].parameters())
    before = first_stage.detach().clone()

    losses = model.train()(images, targets)
    assert {'loss_classifier', 'loss_box_reg', 'loss_mask', 'loss_objectness',
            'loss_rpn_box_reg'} <= set(losses)
    loss = sum(losses.values())
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    assert not torch.equal(first_stage, before)  # the gradients reached the first stage

    with torch.no_grad():
        predictions = model.eval()(images)
    assert len(predictions) == 2
    for prediction in predictions:
        count = len(prediction['boxes'])
        assert prediction['boxes'].shape == (count, 4)
        assert prediction['masks'].shape == (count, 1, 64, 64)
        assert prediction['labels'].shape == prediction['scores'].shape == (count, )


def test_transformers_timm_backbone_builds_glnet_4g_by_name(tmp_path):
    """With the released weights, given as TimmBackbone's keyword arguments for timm."""
    transformers = pytest.importorskip('transformers', reason='transformers is not installed')
    release = random_upstream_checkpoint('4g')
    path = str(tmp_path / 'glnet_4g.pth')
    torch.save(release, path)
    config = transformers.TimmBackboneConfig(backbone='glnet_4g', out_indices=(0, 1, 2, 3),
                                             use_pretrained_backbone=True)
    model = transformers.TimmBackbone(config, pretrained_cfg_overlay=dict(file=path)).eval()
    assert model.channels == GLNET_4G_CHANNELS
    loaded = model.state_dict()['_backbone.model.stages.3.blocks.3.norm1.weight']
    assert torch.equal(loaded, release['model']['stages.3.blocks.3.norm1.weight'])
    with torch.no_grad():
        maps = model(torch.randn(1, 3, 64, 96)).feature_maps
    assert [m.shape for m in maps] == [(1, c, 64 // s, 96 // s)
                                      for c, s in zip(GLNET_4G_CHANNELS, (4, 8, 16, 32))]


def test_transformers_detr_runs_on_glnet_4g():
    """DETR creates the timm model itself (``use_timm_backbone``); only the last map feeds its
    encoder, all four are returned by the backbone."""
    transformers = pytest.importorskip('transformers', reason='transformers is not installed')
    config = transformers.DetrConfig(
        use_timm_backbone=True, use_pretrained_backbone=False, backbone='glnet_4g',
        backbone_kwargs=dict(out_indices=[0, 1, 2, 3]), d_model=32, encoder_layers=1,
        decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=32, decoder_ffn_dim=32, num_queries=5, num_labels=3)
    model = transformers.DetrForObjectDetection(config).eval()
    assert model.model.backbone.conv_encoder.intermediate_channel_sizes == GLNET_4G_CHANNELS
    with torch.no_grad():
        output = model(pixel_values=torch.randn(1, 3, 64, 64))
    assert output.logits.shape == (1, 5, 4) and output.pred_boxes.shape == (1, 5, 4)


def test_detr_dilation_is_refused_in_one_line():
    transformers = pytest.importorskip('transformers', reason='transformers is not installed')
    config = transformers.DetrConfig(
        use_timm_backbone=True, use_pretrained_backbone=False, backbone='glnet_stl',
        backbone_kwargs=dict(out_indices=[0, 1, 2, 3]), dilation=True)
    with pytest.raises(ValueError, match='no dilated form'):
        transformers.DetrForObjectDetection(config)
