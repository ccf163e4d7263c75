import urllib.request


def test_health_answers(mockstatus):
    with urllib.request.urlopen(mockstatus.url("/__mockstatus/health")) as response:
        assert response.status == 200
