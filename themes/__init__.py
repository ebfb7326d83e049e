"""The shipped themes: this top-level folder is installed as the package ``sshtui.themes``
(pyproject.toml), so that ``importlib.resources`` finds its ``*.toml`` files in every kind of install."""
