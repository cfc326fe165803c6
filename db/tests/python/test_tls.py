"""TLS to the database server: the private MariaDB (ops/mariadb.sh) serves a
certificate its DIR/tls/ca.pem signs; the pool connects encrypted when told
a CA (SHARD_DB_SSL_CA), verifies the server against it, and refuses a server
the CA does not vouch for instead of falling back to a plain connection."""

import os
import subprocess
import tempfile
import unittest

import db
from dbsupport import SERVER_DIR, connect
from support import StacklessTestCase
from support import setUpModule as engine_setUpModule, tearDownModule as engine_tearDownModule

CA = os.path.join(SERVER_DIR, "tls", "ca.pem")
TLS_VERSION_SQL = "SELECT variable_value FROM information_schema.session_status WHERE variable_name = 'Ssl_version'"


def setUpModule():
    engine_setUpModule()


def tearDownModule():
    db.close()
    engine_tearDownModule()


def other_ca(directory):
    """A CA of our own that never signed the server's certificate."""
    path = os.path.join(directory, "other-ca.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "1", "-subj", "/CN=not the shard CA", "-keyout", os.path.join(directory, "other-key.pem"),
                    "-out", path], check=True, capture_output=True, timeout=30)
    return path


class TlsTest(StacklessTestCase):
    deadline_s = 30

    def tearDown(self):
        db.close()
        super().tearDown()

    def tls_version(self, **settings):
        db.close()
        connect(pool_size=1, socket="", **settings)  # TCP, as to a server on another machine
        return db.query(TLS_VERSION_SQL)[0][0]

    def test_the_settings_come_from_the_environment(self):
        settings = db.settings_from_env({"SHARD_DB_SSL_CA": "/ca.pem", "SHARD_DB_SSL_CERT": "/c.pem", "SHARD_DB_SSL_KEY": "/k.pem"})
        self.assertEqual((settings["ssl_ca"], settings["ssl_cert"], settings["ssl_key"]), ("/ca.pem", "/c.pem", "/k.pem"))
        self.assertEqual(db.settings_from_env({})["ssl_ca"], "")

    def test_with_the_ca_the_connection_is_encrypted(self):
        self.assertRegex(self.tls_version(ssl_ca=CA), r"^TLSv1\.[23]$")

    def test_without_tls_settings_the_connection_is_plain(self):
        self.assertEqual(self.tls_version(), "")

    def test_a_server_the_ca_did_not_sign_is_refused(self):
        with tempfile.TemporaryDirectory() as directory:
            with self.assertRaises(db.Error) as caught:
                self.tls_version(ssl_ca=other_ca(directory))
        self.assertEqual(caught.exception.code, 2026, caught.exception)  # CR_SSL_CONNECTION_ERROR

    def test_a_client_certificate_that_cannot_be_read_fails_the_connection(self):
        with self.assertRaises(db.Error) as caught:
            self.tls_version(ssl_ca=CA, ssl_cert="/nonexistent/cert.pem", ssl_key="/nonexistent/key.pem")
        self.assertEqual(caught.exception.code, 2026, caught.exception)


if __name__ == "__main__":
    unittest.main()
