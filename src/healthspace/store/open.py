"""Open the configured store: engine from settings, vault from the root key source."""

from __future__ import annotations

from healthspace.settings import Settings
from healthspace.store.engine import create_engine
from healthspace.store.facade import Store
from healthspace.store.keystore import KeyStore
from healthspace.vault import Vault
from healthspace.vault.config import root_key_source

__all__ = ["open_store"]


def open_store(settings: Settings, *, actor: str, initialize: bool = False) -> Store:
    """The store for ``settings``. ``initialize`` creates home, key and schema as needed."""
    if initialize:
        settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    source, _created = root_key_source(settings, create=initialize)
    if initialize and settings.keystore_url is None:
        settings.keystore_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    keystore = KeyStore(create_engine(settings.effective_keystore_url()))
    engine = create_engine(settings.effective_database_url())
    store = Store(engine, Vault(source), keystore, actor=actor)
    if initialize:
        store.initialize()
    else:
        store.check_initialized()
    return store
