"""Training defaults per dataset and model: the settings their documented runs used.

```python
recipe = training_recipe("mnist1d")      # conv1d, 10 epochs, batch 64, lr 0.01
TrainConfig(dataset="mnist1d")           # takes its unset fields from the recipe
```

A field of `TrainConfig` (or a `keras-bnn-af train` option) left unset takes the
recipe's value; `metrics.json` records the values used and the recipe's source.
Pairs without a documented run get `GENERIC`.
"""

from dataclasses import dataclass

__all__ = [
    "GENERIC",
    "RECIPES",
    "Recipe",
    "default_model",
    "describe",
    "training_recipe",
]


@dataclass(frozen=True)
class Recipe:
    """How a model is trained on a dataset by default, and why."""

    model: str
    epochs: int
    batch_size: int
    learning_rate: float
    source: str


#: dataset -> its recipe (the dataset's default model and how to train it).
RECIPES: dict[str, Recipe] = {
    "mnist": Recipe(
        "binarynet",
        3,
        64,
        1e-3,
        "README / docs/binarizers.md: binarynet, Adam 1e-3 with cosine decay; "
        "96.4 % test accuracy after 1 epoch (ste_sign), 3 epochs by default",
    ),
    "mnist1d": Recipe(
        "conv1d",
        10,
        64,
        1e-2,
        "docs/binarizers.md: conv1d, 10 epochs, Adam 1e-2 with cosine decay; "
        "76.6 % (ste_sign) and 89.7 % (GAAF sin) test accuracy, where 1e-3 "
        "reached 44.4 % and 59.8 %",
    ),
    "tfds:cifar10": Recipe(
        "resnet_e18",
        15,
        128,
        5e-3,
        "searchers/README.md: GAAF's CIFAR-10 proxy settings (ResNet-E18, 15 "
        "epochs, batch 128, Adam 5e-3)",
    ),
}
#: Any other dataset and model.
GENERIC = Recipe(
    "binarynet", 3, 64, 1e-3, "generic defaults (no documented run for this pair)"
)


def default_model(dataset: str) -> str:
    """The model a dataset is trained with when none is named."""
    return RECIPES.get(dataset, GENERIC).model


def training_recipe(dataset: str, model: str | None = None) -> Recipe:
    """The recipe of `dataset` with `model` (default: the dataset's model).

    A model other than the dataset's own gets `GENERIC`'s epochs, batch and
    learning rate.
    """
    recipe = RECIPES.get(dataset, GENERIC)
    if model is None or model == recipe.model:
        return Recipe(recipe.model, *_settings(recipe), recipe.source)
    return Recipe(model, *_settings(GENERIC), GENERIC.source)


def _settings(recipe: Recipe) -> tuple[int, int, float]:
    return recipe.epochs, recipe.batch_size, recipe.learning_rate


def describe() -> str:
    """The recipes as a few lines of text, for `--help`."""
    lines = ["defaults per dataset (model, epochs, batch size, learning rate):"]
    for dataset, recipe in RECIPES.items():
        lines.append(
            f"  {dataset:<13} {recipe.model}, {recipe.epochs} epochs, batch "
            f"{recipe.batch_size}, lr {recipe.learning_rate:g}"
        )
    lines.append(
        f"  other         {GENERIC.model}, {GENERIC.epochs} epochs, batch "
        f"{GENERIC.batch_size}, lr {GENERIC.learning_rate:g}"
    )
    return "\n".join(lines)
