"""Make the stock ``lm_eval`` CLI find the ``effeval-*`` models with no user import.

A ``.pth`` file in site-packages imports this module at interpreter start, so it must be
cheap: it only puts a finder on ``sys.meta_path``. The finder waits until
``lm_eval.api.registry`` is imported, lets it execute, then registers our model names as
lazy ``"module:Class"`` placeholders. It also imports ``lm_eval.models`` (a plain dict of
placeholders in lm-eval 0.4.x): ``get_model`` only does that itself while the registry is
empty, so without it ``--model hf`` and every other built-in would vanish.
"""

import sys

_REGISTRY_MODULE = "lm_eval.api.registry"


def register_effeval_models(registry_module) -> None:
    """Register the effeval-* names in lm-eval's model registry (idempotent)."""
    from effeval.models import MODEL_TARGETS

    registry = registry_module.model_registry
    for name, target in MODEL_TARGETS.items():
        if name not in registry:
            registry.register(name, target=target)
    import lm_eval.models  # noqa: F401  (registers the built-ins: hf, vllm, ...)


class _RegisterAfterExec:
    """Loader wrapper: execute the real module, then register our models."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        try:
            register_effeval_models(module)
        except Exception as exc:  # never break lm-eval because of us
            import logging

            logging.getLogger("effeval").warning("effeval: could not register lm-eval models: %s", exc)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _LmEvalRegistryFinder:
    def find_spec(self, fullname, path=None, target=None):
        if fullname != _REGISTRY_MODULE:
            return None
        sys.meta_path.remove(self)  # one shot; also avoids recursion below
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(fullname, path, target) if find_spec else None
            if spec is not None and spec.loader is not None:
                spec.loader = _RegisterAfterExec(spec.loader)
                return spec
        return None


def install() -> None:
    if _REGISTRY_MODULE in sys.modules:  # lm-eval already imported: register directly
        register_effeval_models(sys.modules[_REGISTRY_MODULE])
        return
    if not any(isinstance(f, _LmEvalRegistryFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _LmEvalRegistryFinder())


install()
