"""The test control plane's certificates and keys, made in memory (no I/O).

One CA signs the apiserver's serving certificate and every client certificate. Kubernetes
authenticates a client certificate as user CN in the groups O, so the admin is simply a
certificate with O=system:masters, and the controller-manager and scheduler get the user names
that the built-in RBAC bindings already expect.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Certificates for a throwaway cluster; a week covers a long-lived `make cluster-up`.
VALIDITY = datetime.timedelta(days=7)
# Tolerates small clock differences between the moment of signing and of checking.
BACKDATE = datetime.timedelta(minutes=5)
KUBE_ROUTER_USER = "chatcluster-test:kube-router"
"""The identity of the real node's NetworkPolicy engine (kube-router's firewall)."""


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate and its PEM (PKCS#8, unencrypted) private key."""

    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class ControlPlanePki:
    """Everything the control plane needs to authenticate its parts to one another."""

    ca: KeyPair
    apiserver: KeyPair
    admin: KeyPair
    controller_manager: KeyPair
    scheduler: KeyPair
    service_account_key_pem: bytes
    """Signs service-account tokens (apiserver) and is the controller-manager's token key."""
    service_account_public_pem: bytes
    """Verifies service-account tokens."""
    node: NodePki | None = None
    """Present when the cluster has a real node."""


@dataclass(frozen=True)
class NodePki:
    """A real node's identities: the kubelet as client and server, kube-proxy, kube-router (the
    NetworkPolicy firewall), and the apiserver as the kubelet's client (logs, exec,
    port-forward)."""

    kubelet_client: KeyPair
    kubelet_serving: KeyPair
    kube_proxy: KeyPair
    kube_router: KeyPair
    apiserver_kubelet_client: KeyPair


def make_control_plane_pki(
    *, service_ip: str, node_name: str | None = None, node_ip: str | None = None
) -> ControlPlanePki:
    """All certificates for an apiserver on 127.0.0.1 whose `kubernetes` Service is `service_ip`;
    with `node_name` and `node_ip`, also on the node's address, and the node's identities."""
    ca_key = _new_key()
    ca_name = _name("chatcluster-test-ca")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca = _CertificateAuthority(ca_cert, ca_key)
    sa_key = _new_key()
    node = None
    if node_name is not None and node_ip is not None:
        node = NodePki(
            # The Node authorizer and NodeRestriction know a kubelet by exactly this name.
            kubelet_client=ca.issue_client(f"system:node:{node_name}", groups=["system:nodes"]),
            kubelet_serving=ca.issue_serving(node_name, ips=[node_ip], dns_names=[node_name]),
            # The user the built-in system:node-proxier binding names.
            kube_proxy=ca.issue_client("system:kube-proxy"),
            # Bound by tests.support.k8s_node.kube_router_access_objects.
            kube_router=ca.issue_client(KUBE_ROUTER_USER),
            # The kubelet asks the apiserver (webhook) whether its caller may; a throwaway
            # cluster's apiserver may do anything.
            apiserver_kubelet_client=ca.issue_client(
                "kube-apiserver-kubelet-client", groups=["system:masters"]
            ),
        )
    return ControlPlanePki(
        ca=KeyPair(_cert_pem(ca_cert), _key_pem(ca_key)),
        apiserver=ca.issue_serving(
            "kube-apiserver",
            ips=["127.0.0.1", service_ip, *([node_ip] if node_ip else [])],
            dns_names=[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
        ),
        admin=ca.issue_client("chatcluster-admin", groups=["system:masters"]),
        controller_manager=ca.issue_client("system:kube-controller-manager"),
        scheduler=ca.issue_client("system:kube-scheduler"),
        service_account_key_pem=_key_pem(sa_key),
        service_account_public_pem=sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        node=node,
    )


@dataclass(frozen=True)
class _CertificateAuthority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def issue_serving(self, common_name: str, *, ips: list[str], dns_names: list[str]) -> KeyPair:
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        return self._issue(
            _name(common_name),
            ExtendedKeyUsageOID.SERVER_AUTH,
            x509.SubjectAlternativeName(names),
        )

    def issue_client(self, user: str, *, groups: list[str] | None = None) -> KeyPair:
        attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups or []]
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
        return self._issue(x509.Name(attributes), ExtendedKeyUsageOID.CLIENT_AUTH, None)

    def _issue(
        self,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        alt_names: x509.SubjectAlternativeName | None,
    ) -> KeyPair:
        key = _new_key()
        builder = (
            _builder(subject, self.cert.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if alt_names is not None:
            builder = builder.add_extension(alt_names, critical=False)
        return KeyPair(_cert_pem(builder.sign(self.key, hashes.SHA256())), _key_pem(key))


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256: accepted by every component (also for service-account tokens, ES256) and far
    # quicker to generate than RSA on a busy CI machine.
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
