import urllib.request


def test_health_answers(live):
    with urllib.request.urlopen(live.url("/__mockstatus/health")) as response:
        assert response.status == 200
