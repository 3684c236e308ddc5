"""auto_mtls_from_env: the SDK's public AutoMTLS step, which the fake serves through too."""

import ssl

import pytest

from pluginconf.plugin import ServeConfigError
from pluginconf.plugin.serving.mtls import auto_mtls_from_env
from pluginconf.protocol.constants import ENV_CLIENT_CERT
from pluginconf.protocol.mtls import generate_certificate


def test_without_a_client_certificate_the_plugin_serves_plaintext():
    assert auto_mtls_from_env({}) is None
    assert auto_mtls_from_env({ENV_CLIENT_CERT: ""}) is None


def test_a_client_certificate_gives_both_contexts_and_a_fresh_key_each_time():
    env = {ENV_CLIENT_CERT: generate_certificate().cert_pem.decode()}
    first, second = auto_mtls_from_env(env), auto_mtls_from_env(env)
    assert first is not None and second is not None
    assert first.cert_der != second.cert_der
    assert first.server.verify_mode == ssl.CERT_REQUIRED
    assert first.client.verify_mode == ssl.CERT_REQUIRED


def test_a_variable_that_holds_no_certificate_is_refused_naming_it():
    with pytest.raises(ServeConfigError, match=ENV_CLIENT_CERT):
        auto_mtls_from_env({ENV_CLIENT_CERT: "not a certificate"})
