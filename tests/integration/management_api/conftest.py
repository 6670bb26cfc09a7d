from tests.integration.management_api.support import (  # noqa: F401  (fixtures)
    api,
    auditor_token,
    auditor_user,
    master_key,
    ops_token,
    ops_user,
    world,
)
