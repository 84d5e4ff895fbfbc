"""Install unirestore_mm.  Use ``bash tools/install.sh`` for the full stack (it
builds mmcv with ops).

Dependencies are read from ``requirements/`` (OpenMMLab's layout), never listed
here:

    pip install -e .                    # runtime: requirements/runtime.txt
    pip install -e .[tests]             # + what the tests need (requirements/tests.txt)
    pip install -e .[timm]              # extras: timm, text-encoder, efficientnet-lite, optional, mim, all
"""  # noqa: E501

import os.path as osp
import re

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))
REQUIREMENTS = osp.join(HERE, 'requirements')

# extra name -> file under requirements/ (mim: mmcv with compiled ops, which
# pip cannot build against torch 2.14 from PyPI's source; tools/install.sh
# does).
EXTRA_FILES = {
    'optional': 'optional.txt',
    'text-encoder': 'text_encoder.txt',
    'timm': 'timm.txt',
    'efficientnet-lite': 'efficientnet_lite.txt',
    'tests': 'tests.txt',
    'mim': 'mminstall.txt',
}


def read_version():
    scope = {}
    with open(
        osp.join(HERE, 'unirestore_mm', 'version.py'), encoding='utf-8'
    ) as f:
        exec(f.read(), scope)
    return scope['__version__']


def parse_requirements(path, _seen=None):
    """The requirement specifiers of a requirements file, ``-r other.txt``
    lines followed (relative to the file).

    Comments (a ``#`` at the start of a line or after a space) and blank lines
    are dropped; a requirement that appears twice is kept once, first place
    wins.  Lines starting with any other option (``-e``, ``--index-url``) raise
    ``ValueError`` naming the file and line: install_requires cannot express
    them.
    """
    path = osp.abspath(path)
    seen = set() if _seen is None else _seen
    if path in seen:
        return []
    seen.add(path)
    out = []
    with open(path, encoding='utf-8') as f:
        for lineno, raw in enumerate(f, 1):
            line = re.split(r'(^|\s)#', raw, maxsplit=1)[0].strip()
            if not line:
                continue
            if line.startswith(('-r ', '--requirement ')):
                out += parse_requirements(
                    osp.join(osp.dirname(path), line.split(None, 1)[1]), seen
                )
            elif line.startswith('-'):
                raise ValueError(
                    f'{path}:{lineno}: option {line!r} cannot go into '
                    'setup.py; '
                    'expected a requirement or "-r <file>"'
                )
            else:
                out.append(line)
    unique = []
    for req in out:
        if req not in unique:
            unique.append(req)
    return unique


def extras_require():
    extras = {
        name: parse_requirements(osp.join(REQUIREMENTS, fname))
        for name, fname in EXTRA_FILES.items()
    }
    # [all]: everything in the top-level requirements.txt (runtime, optional,
    # extras, tests), as in OpenMMLab.
    extras['all'] = parse_requirements(osp.join(HERE, 'requirements.txt'))
    return extras


def setup_kwargs():
    with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
        long_description = f.read()
    return dict(
        name='unirestore_mm',
        version=read_version(),
        description='UniRestore (CVPR 2025) as a pluggable restoration stage '
        'for OpenMMLab',
        long_description=long_description,
        long_description_content_type='text/markdown',
        license='MIT',
        python_requires='>=3.9',
        packages=find_packages(exclude=('tests', 'tests.*')),
        include_package_data=True,
        install_requires=parse_requirements(
            osp.join(REQUIREMENTS, 'runtime.txt')
        ),
        extras_require=extras_require(),
        zip_safe=False,
    )


if __name__ == '__main__':
    setup(**setup_kwargs())
