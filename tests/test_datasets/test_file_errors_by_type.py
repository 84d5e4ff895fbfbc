"""A bad file is recognised by the type of its error (or by reading the
sample's files again), never by the words of a message: file errors are skipped
or raised by ``on_corrupt``, bugs are always raised."""

import logging

import cv2
import pytest

from unirestore_mm.datasets import CorruptSampleError, PairedImageDataset
from unirestore_mm.datasets.paired import FILE_ERRORS, file_error
from unirestore_mm.datasets.transforms.transforms import CorruptImageError

from .helpers import write_image


def dataset(root, *steps, on_corrupt='skip'):
    """Clean images 0.png, 1.png, 2.png; ``steps`` (callables) run after
    loading."""
    pipeline = [dict(type='unirestore_mm.LoadPairedImages')] + list(steps)
    return PairedImageDataset(
        data_root=str(root),
        data_prefix=dict(gt_path='gt'),
        pipeline=pipeline,
        on_corrupt=on_corrupt,
    )


@pytest.fixture
def root(tmp_path):
    for i in range(3):
        write_image(str(tmp_path / f'gt/{i}.png'), 8, 8, seed=i)
    return tmp_path


def raises_on_sample_1(exc):
    def step(results):
        if results['img_path'].endswith('1.png'):
            raise exc
        return results

    return step


@pytest.mark.parametrize(
    'exc',
    [
        FileNotFoundError(2, 'No such file or directory'),
        IsADirectoryError(21, 'Is a directory'),
        PermissionError(13, 'Permission denied'),
        CorruptImageError('cannot decode image file'),
    ],
)
def test_file_error_types_are_skipped_or_raised(root, exc):
    assert isinstance(exc, FILE_ERRORS)
    s = dataset(root, raises_on_sample_1(exc))[1]
    assert s['img_path'].endswith('2.png')  # skipped to the next sample
    with pytest.raises(CorruptSampleError, match=r'1\.png') as info:
        dataset(root, raises_on_sample_1(exc), on_corrupt='raise')[1]
    assert info.value.__cause__ is exc


@pytest.mark.parametrize(
    'exc',
    [
        ValueError('failed to load the degradation table'),
        AssertionError('could not load: shapes differ'),
        KeyError('load'),
        cv2.error('resize: bad size'),
    ],
)
def test_a_bug_is_raised_even_when_its_message_speaks_of_loading(root, exc):
    """The files are fine: whatever the message says, this is a bug, and it is
    never skipped."""
    with pytest.raises(CorruptSampleError, match=r'1\.png') as info:
        dataset(root, raises_on_sample_1(exc))[1]
    assert info.value.__cause__ is exc


def test_a_loader_that_does_not_raise_a_file_error_type(root, caplog):
    """mmcv's LoadImageFromFile asserts on an undecodable image (whatever its
    message), mmseg's LoadAnnotations calls a method of None: the sample's
    files are read again, and the broken one makes it a file error."""
    (root / 'gt' / '1.png').write_bytes(b'\x89PNG broken')

    def third_party_loader(results):
        img = cv2.imread(results['img_path'])
        assert img is not None  # no message at all
        results['img'] = img
        return results

    ds = PairedImageDataset(
        data_root=str(root),
        data_prefix=dict(gt_path='gt'),
        pipeline=[third_party_loader],
    )
    with caplog.at_level(logging.WARNING):
        assert ds[1]['img_path'].endswith('2.png')
    strict = PairedImageDataset(
        data_root=str(root),
        data_prefix=dict(gt_path='gt'),
        pipeline=[third_party_loader],
        on_corrupt='raise',
    )
    with pytest.raises(
        CorruptSampleError, match=r'1\.png.*CorruptImageError: cannot decode'
    ):
        strict[1]


def test_file_error_reads_the_files(root, tmp_path):
    bug = AssertionError()
    good = {'img_path': str(root / 'gt' / '0.png')}
    assert file_error(bug, good) is None
    missing = file_error(bug, {'img_path': str(tmp_path / 'nope.png')})
    assert isinstance(missing, FileNotFoundError)
    assert isinstance(
        file_error(bug, {'img_path': str(root / 'gt')}), IsADirectoryError
    )
    (tmp_path / 'empty.png').write_bytes(b'')
    assert isinstance(
        file_error(bug, {**good, 'gt_path': str(tmp_path / 'empty.png')}),
        CorruptImageError,
    )
    own = PermissionError(13, 'denied')
    assert file_error(own, good) is own
