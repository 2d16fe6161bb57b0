#!/bin/bash
# Make a test PKI + admin kubeconfig in DIR (openssl). Usage: hack/mkpki.sh DIR [APISERVER_PORT]
set -euo pipefail
D=$(mkdir -p "${1:?pki dir}" && cd "$1" && pwd); PORT=${2:-6443}
cd "$D"
q() { "$@" >/dev/null 2>&1; }
q openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=test-ca"
q openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver"
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' > apiserver.ext
q openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 3650 -extfile apiserver.ext
q openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=admin"
printf 'extendedKeyUsage=clientAuth\n' > client.ext
q openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 3650 -extfile client.ext
q openssl genrsa -out sa.key 2048
q openssl rsa -in sa.key -pubout -out sa.pub
cat > kubeconfig <<KC
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:$PORT
    certificate-authority: $D/ca.crt
users:
- name: admin
  user:
    client-certificate: $D/admin.crt
    client-key: $D/admin.key
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
KC
