import pytest

from cato_mq.settings import Settings


def test_environment_is_read_and_typed() -> None:
    s = Settings.from_env({"CATO_REDIS_URL": "redis://h:1/2", "CATO_POOLS": "a, b", "CATO_VISIBILITY_TIMEOUT_S": "10"})
    assert s.redis_url == "redis://h:1/2"
    assert s.pools == ("a", "b")
    assert s.node_timeout_s == pytest.approx(8.0)


def test_defaults_without_environment() -> None:
    s = Settings.from_env({})
    assert s.pools == ("default",) and s.visibility_timeout_s > s.node_timeout_s


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CATO_VISIBILITY_TIMEOUT_S": "-1"}, "CATO_VISIBILITY_TIMEOUT_S"),
        ({"CATO_POOLS": "a b"}, "letters, digits"),
        ({"CATO_POOLS": ","}, "at least one pool"),
        ({"CATO_HEARTBEAT_S": "often"}, "CATO_HEARTBEAT_S"),
    ],
)
def test_bad_environment_names_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)
