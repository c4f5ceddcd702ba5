#!/bin/sh
# curl-p11id.sh: curl with its client key on a PKCS#11 token, through the
# p11id OpenSSL provider. docs/curl.md explains it; tests/apps/t_curl_mtls_keyref.sh
# runs this script.
#
#   curl-p11id.sh https://www.example.com:8443/ [more curl options]
#
# curl 7.88 (Debian 12) hands `--key pkcs11:...` to the OpenSSL ENGINE API,
# not to providers; give it the key reference file of the token key instead,
# made once with the provider active:
#   OPENSSL_CONF=/etc/p11id/openssl-p11id.cnf \
#       openssl pkey -in 'pkcs11:token=client;object=client;type=private' \
#       -out /etc/p11id/client.keyref.pem
# curl 8.12 and later also take the URI itself: --key 'pkcs11:...'.
#
# The provider comes from OPENSSL_CONF (conf/openssl-p11id.cnf), whose
# pin-source gives the PIN: curl does not prompt. Without a pin-source,
# curl's passphrase prompt asks for the PIN ("Enter PEM pass phrase:"), and
# --pass answers it (better from a curl config file, -K file, than in argv).
#
# Exit status 58 "unable to set private key file: '...' type PEM" means the
# key could not be loaded: p11id not active, wrong PIN, token not found.
# See why with the same configuration:
#   OPENSSL_CONF=/etc/p11id/openssl-p11id.cnf openssl pkey -in KEYFILE -noout
#
# Settings (environment):
P11ID_OPENSSL_CONF=${P11ID_OPENSSL_CONF:-/etc/p11id/openssl-p11id.cnf}
P11ID_CA=${P11ID_CA:-/etc/p11id/ca.crt}
P11ID_CERT=${P11ID_CERT:-/etc/p11id/client.crt}
P11ID_KEY=${P11ID_KEY:-/etc/p11id/client.keyref.pem}

OPENSSL_CONF=$P11ID_OPENSSL_CONF
export OPENSSL_CONF
exec curl --cacert "$P11ID_CA" --cert "$P11ID_CERT" --key "$P11ID_KEY" "$@"
