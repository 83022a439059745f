"""Training-loop hooks shared by the tests (imported as a plain module: tests/ has no __init__)."""

from advexp_lib.hooks import InputTransform


class StopAt(InputTransform):
    """Raises KeyboardInterrupt at the start of epoch ``at`` (after the previous epoch's checkpoint),
    like a kill mid-run; otherwise passes the inputs through. ``at=-1`` never stops."""

    def __init__(self, at):
        self.at = at

    def start_epoch(self, epoch, num_epochs):
        if epoch == self.at:
            raise KeyboardInterrupt

    def __call__(self, model, x, y):
        return x
