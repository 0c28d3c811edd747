from setuptools import find_packages, setup


def get_version() -> str:
    namespace: dict = {}
    with open('glmix_mm/version.py') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='glmix_mm',
    version=get_version(),
    description='GLNet (GLMix) and Conformer backbones for MMDetection, '
    'MMSegmentation and MMPretrain',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.8',
    # mmpretrain: the Conformer backbone builds on its classification Conformer.
    # safetensors: checkpoints in that format load and the converters can write them.
    # torch: the floor only (2.1, glmix_mm.compat.TORCH_FLOOR); an installed torch that meets it
    # is never replaced.
    install_requires=['torch>=2.1', 'mmengine>=0.10.0', 'mmcv>=2.0.0,<2.2.0', 'mmpretrain>=1.0.0',
                      'safetensors'],
    extras_require={
        'det': ['mmdet>=3.0.0', 'pycocotools'],
        'seg': ['mmsegmentation>=1.0.0', 'ftfy', 'regex'],
        # ONNX export and ONNX Runtime checks (docs/deployment.md); versions tested with torch
        # 2.12.1 and numpy 2.
        'deploy': ['onnx==1.23.2', 'onnxruntime==1.32.0', 'onnxscript==0.7.2'],
        # GLNet and Conformer as timm models (glmix_mm.timm, docs/timm.md): 1.0.30 is the
        # newest timm for Python 3.8 / 3.9, 1.0.31 the one tested on newer Pythons.
        'timm': ['timm>=1.0.30'],
    },
    license='MIT',
    zip_safe=False,
)
