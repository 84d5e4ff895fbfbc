"""An iteration-based training loop whose ``--resume`` continues exactly.

mmengine's ``IterBasedTrainLoop`` re-seeds, advances the data loader past the
iterations already trained and goes on; the random state of the interrupted run
is lost.  This loop does the same and then restores the random state that
:class:`~unirestore_mm.engine.checkpoint.TrainedPartsCheckpointHook` saved
(every process's own), so noise draws, timestep draws and data-loading
randomness continue as if the run had never stopped.
"""

import logging

from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop

from ..registry import LOOPS
from .checkpoint import restore_pending_rng


@LOOPS.register_module()
class ExactResumeIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` that restores the saved random state after
    advancing the data loader."""

    def run(self):
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        if self._iter > 0:
            print_log(
                f'Advance dataloader {self._iter} steps to skip data that '
                'has already been trained',
                logger='current',
                level=logging.INFO,
            )
            for _ in range(self._iter):
                next(self.dataloader_iterator)
        if restore_pending_rng(self.runner):
            print_log(
                f'random state restored at iteration {self._iter}',
                logger='current',
            )
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (
                self.runner.val_loop is not None
                and self._iter >= self.val_begin
                and (
                    self._iter % self.val_interval == 0
                    or self._iter == self._max_iters
                )
            ):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model
