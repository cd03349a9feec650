//! The server's features, one module each. Every module registers hooks and disco entries in `register`; none
//! touches the router.
#![forbid(unsafe_code)]

pub mod adhoc;
pub mod admin_commands;
pub mod blocking;
pub mod bookmarks;
pub mod carbons;
pub mod circles;
pub mod client_management;
pub mod contact_info;
pub mod disco;
pub mod forms;
pub mod invite_commands;
pub mod invite_register;
pub mod invites;
pub mod last_activity;
pub mod mam;
pub mod message;
pub mod offline;
pub mod pep;
pub mod ping;
pub mod presence;
pub mod private;
pub mod register;
pub mod roster;
pub mod session;
pub mod support;
pub mod time;
pub mod vcard;
pub mod version;

use std::sync::Arc;

use rookery_core::Module;

/// The modules every server runs, in load order.
pub fn default_modules() -> Vec<Arc<dyn Module>> {
    vec![
        Arc::new(disco::DiscoModule),
        Arc::new(ping::Ping),
        Arc::new(session::LegacySession),
        Arc::new(roster::RosterModule),
        Arc::new(presence::PresenceModule),
        Arc::new(vcard::VCardModule),
        Arc::new(private::PrivateStorage),
        Arc::new(last_activity::LastActivity::default()),
        Arc::new(version::SoftwareVersion),
        Arc::new(time::EntityTime),
        Arc::new(contact_info::ContactInfo),
        Arc::new(adhoc::Adhoc::default()),
        Arc::new(admin_commands::AdminCommands),
        Arc::new(invite_commands::InviteCommands),
        Arc::new(client_management::ClientManagement),
        Arc::new(blocking::Blocking::new()),
        Arc::new(register::AccountManagement),
        Arc::new(circles::CirclesModule),
        Arc::new(invite_register::InviteRegistration),
        Arc::new(carbons::Carbons),
        Arc::new(mam::MamModule),
        Arc::new(message::MessageModule),
        Arc::new(offline::OfflineModule::default()),
        Arc::new(pep::PepModule),
    ]
}
