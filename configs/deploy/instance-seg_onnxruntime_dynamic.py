# MMDeploy 1.3.1 deploy config: an MMDetection instance-segmentation model (Mask R-CNN) to
# ONNX Runtime with dynamic batch, height and width. The same settings as mmdeploy's
# configs/mmdet/instance-seg/instance-seg_onnxruntime_dynamic.py (its _base_ chain
# base_instance-seg_dynamic -> base_instance-seg_static -> base_static -> onnx_config, plus
# backends/onnxruntime), written out as one file because mmdeploy's configs are not part of its
# pip wheel. Used by tools/deployment/deploy_detector.py (docs/deployment.md).
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=11,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['dets', 'labels', 'masks'],
    input_shape=None,  # the model config's test pipeline decides the export size
    optimize=True,  # needs mmdeploy's TorchScript optimizer extension; skipped without it
    dynamic_axes=dict(
        input={0: 'batch', 2: 'height', 3: 'width'},
        dets={0: 'batch', 1: 'num_dets'},
        labels={0: 'batch', 1: 'num_dets'},
        masks={0: 'batch', 1: 'num_dets', 2: 'height', 3: 'width'}))
codebase_config = dict(
    type='mmdet',
    task='ObjectDetection',
    model_type='end2end',
    post_processing=dict(
        score_threshold=0.05,
        confidence_threshold=0.005,  # for YOLOv3
        iou_threshold=0.5,
        max_output_boxes_per_class=200,
        pre_top_k=5000,
        keep_top_k=100,
        background_label_id=-1,
        export_postprocess_mask=False))  # RoI masks out of ONNX, pasted by mmdeploy in Python
backend_config = dict(type='onnxruntime')
