"""The learned scorer (issue 16): investigators' dispositions and input labels train a boosted
classifier over what a run already knows of each account, and its score blends into the
ranking without ever hiding a critical red flag."""

from flows87.pipeline.learn.blend import blend_accounts, blend_cases
from flows87.pipeline.learn.matrix import account_matrix
from flows87.pipeline.learn.model import LearnSettings, Model, load_settings, train

__all__ = [
    "LearnSettings",
    "Model",
    "account_matrix",
    "blend_accounts",
    "blend_cases",
    "load_settings",
    "train",
]
