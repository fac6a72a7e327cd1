"""Name -> factory registries filled by decorators (timm's `@register_model` pattern),
shared by the face detectors and the swap backends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from clipswap_video.errors import ConfigValueError

Factory = TypeVar("Factory", bound=Callable[..., object])


class Registry(Generic[Factory]):
    """Factories by name; an unknown name is a config error listing the known ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Factory] = {}

    def register(self, name: str) -> Callable[[Factory], Factory]:
        def add(factory: Factory) -> Factory:
            self._factories[name] = factory
            return factory

        return add

    def names(self) -> list[str]:
        return sorted(self._factories)

    def get(self, name: str) -> Factory:
        if name not in self._factories:
            known = ", ".join(self.names())
            raise ConfigValueError(f"unknown {self.kind} {name!r}; choose one of {known}")
        return self._factories[name]


__all__ = ["Registry"]
