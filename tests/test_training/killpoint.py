"""Test-only hooks, imported by configs the training tests write (``custom_imports``)."""
import json
import os
import time

from mmengine.hooks import Hook

from unirestore_mm.registry import HOOKS


@HOOKS.register_module(force=True)
class RecordLossHook(Hook):
    """Append ``{"iter": n, "loss": ..., "lr": ...}`` lines to ``path`` after every iteration."""

    priority = 'LOWEST'

    def __init__(self, path):
        self.path = path

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        lr = runner.optim_wrapper.get_lr()['lr'][0]
        with open(self.path, 'a') as f:
            f.write(json.dumps(dict(iter=runner.iter + 1, loss=float(outputs['loss'].detach()), lr=lr)) + '\n')


@HOOKS.register_module(force=True)
class KillPointHook(Hook):
    """At the start of iteration ``at`` (1-based), write ``marker`` and hang, so a test can SIGKILL the run
    mid-iteration; a no-op when ``$UNIRESTORE_NO_KILLPOINT`` is set (the resumed run)."""

    def __init__(self, at, marker):
        self.at, self.marker = at, marker

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.at and not os.environ.get('UNIRESTORE_NO_KILLPOINT'):
            with open(self.marker, 'w') as f:
                f.write(str(os.getpid()))
            time.sleep(600)


@HOOKS.register_module(force=True)
class StopAtHook(Hook):
    """Stop training after iteration ``at`` (as if interrupted cleanly)."""

    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 >= self.at:
            runner.train_loop.stop_training = True
