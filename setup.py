"""Install unirestore_mm.  Use ``bash tools/install.sh`` for the full stack (it builds mmcv with ops)."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version():
    scope = {}
    with open(osp.join(HERE, 'unirestore_mm', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements():
    with open(osp.join(HERE, 'requirements.txt'), encoding='utf-8') as f:
        lines = [ln.split('#')[0].strip() for ln in f]
    return [ln for ln in lines if ln and not ln.startswith('pytest')]


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
    zip_safe=False,
)
