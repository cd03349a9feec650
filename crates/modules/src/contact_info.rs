//! XEP-0157 Contact Addresses, as a XEP-0128 extension form in the server's disco#info (Prosody's
//! mod_server_contact_info, which Snikket fills from `SNIKKET_ABUSE_EMAIL` and `SNIKKET_SECURITY_EMAIL`). Only the
//! addresses configured appear; with none, there is no form.

use std::sync::Arc;

use rookery_core::{Module, Registry, Server};
use rookery_xml::Element;

use crate::forms::{Field, FieldKind, Form, FormKind};

/// The XEP-0128 form type of server information.
pub const FORM_TYPE: &str = "http://jabber.org/network/serverinfo";

pub struct ContactInfo;

impl Module for ContactInfo {
    fn name(&self) -> &'static str {
        "contact_info"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.disco.add_extension_form(contact_form);
    }
}

fn contact_form(server: &Server) -> Option<Element> {
    let config = &server.config;
    let addresses = [
        ("abuse-addresses", &config.abuse_email),
        ("security-addresses", &config.security_email),
    ];
    let mut form = Form::with_form_type(FormKind::Result, FORM_TYPE);
    for (var, email) in addresses {
        if let Some(email) = email {
            form = form.with_field(
                Field::new(var, FieldKind::ListMulti).with_value(format!("mailto:{email}")),
            );
        }
    }
    // The FORM_TYPE field alone says nothing.
    (form.fields.len() > 1).then(|| form.to_element())
}
