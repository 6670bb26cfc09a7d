import time
from tests.integration.server import bearer

def test_probe(gateway, fake_azure, azure_route, make_key, http, wait_for_log):
    fails = 0
    for i in range(8):
        dep = azure_route(fake_azure)
        key = make_key()
        r = http.post("/v1/responses", json={"model": dep.group.name, "input": "Hello"}, headers=bearer(key))
        print(i, r.status_code, r.text[:200])
        if r.status_code != 200: fails += 1
        time.sleep(0.07 * i)
    row = wait_for_log(r.headers["x-gateway-request-id"])
    print(row.__dict__)
    assert fails == 0
