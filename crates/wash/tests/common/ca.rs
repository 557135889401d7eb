//! Certificate authorities made in a test, for TLS servers and clients.

use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A CA made for the test, written to `<dir>/<name>-ca.pem`.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub pem: PathBuf,
}

impl Ca {
    pub fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&pem, issuer.pem()).unwrap();
        Self { issuer, pem }
    }

    /// A leaf for `names`, written to `<cert>` and `<key>`.
    pub fn issue(&self, names: &[&str], cert: &Path, key: &Path) {
        let pair = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let leaf = params.signed_by(&pair, &self.issuer).unwrap();
        std::fs::create_dir_all(cert.parent().unwrap()).unwrap();
        // Written whole and then moved, as a rotation would be.
        let tmp = cert.with_extension("tmp");
        std::fs::write(&tmp, leaf.pem()).unwrap();
        std::fs::write(key, pair.serialize_pem()).unwrap();
        std::fs::rename(&tmp, cert).unwrap();
    }
}
