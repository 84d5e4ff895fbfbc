"""tools/analysis_tools/benchmark_restore.py runs from any folder and reports a
finite output with the machine's versions."""

import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_benchmark_restore_tiny(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_restore.py'),
            '--preset',
            'tiny',
            '--size',
            '32',
            '--repeat',
            '1',
            '--dtype',
            'fp32',
            'bf16',
        ],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'torch ' in proc.stdout and 'diffusers ' in proc.stdout
    for dtype in ('fp32', 'bf16'):
        assert f'{dtype}: ' in proc.stdout and 'finite=True' in proc.stdout, (
            proc.stdout
        )
