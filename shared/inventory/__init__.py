"""The desired state: which keys the app looks after, who may use each one, how they rotate, who depends on them.

It is loaded from a checked-in YAML file (app setting `CMK_INVENTORY_PATH`) and validated in full before the app
acts on it: a wrong principal id or a typo in a field name would otherwise make the app revoke the access a
production service needs, or silently skip a check. So validation collects every problem it finds and reports them
together, each naming the file, the key and the field (`reference.yaml: keys[mysql-encryption-key].identity.
principal_id: not a GUID ('abc')`).

Placeholders (`${NAME}`, `${NAME:-default}`) are substituted after the YAML is parsed, in string values only: a
variable can never change the document's structure (a value holding ": " or a newline stays one string), and
placeholders in comments are inert.

The values live in shared.inventory.model, the reading and validation in shared.inventory.reader (and the modules it
names); `normalize_scope` is shared.arm_ids', re-exported here for callers that import it from the inventory. This
module is what the rest of the app imports.
"""

from shared.arm_ids import normalize_scope
from shared.inventory.consumers import dek_table_problems
from shared.inventory.model import (
    HSM_MIN_ROTATE_AFTER,
    HSM_VERSION_CAP,
    Consumer,
    Identity,
    IdentityKind,
    Inventory,
    InventoryError,
    IsoDuration,
    KeyOrigin,
    ManagedKey,
    ManagedVault,
    Mode,
    Policy,
    Principal,
    Rotation,
    UnknownKey,
    VaultKind,
    normalize_host,
)
from shared.inventory.reader import load_inventory, parse_inventory
from shared.settings import DEFAULT_INVENTORY_PATH, inventory_path

__all__ = [
    "DEFAULT_INVENTORY_PATH",
    "HSM_MIN_ROTATE_AFTER",
    "HSM_VERSION_CAP",
    "Consumer",
    "Identity",
    "IdentityKind",
    "Inventory",
    "InventoryError",
    "IsoDuration",
    "KeyOrigin",
    "ManagedKey",
    "ManagedVault",
    "Mode",
    "Policy",
    "Principal",
    "Rotation",
    "UnknownKey",
    "VaultKind",
    "dek_table_problems",
    "inventory_path",
    "load_inventory",
    "normalize_host",
    "normalize_scope",
    "parse_inventory",
]
