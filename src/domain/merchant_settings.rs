//! What a merchant sets about its messages: how they look (branding) and when and whether they
//! go (notification settings). Everything left unset comes from the configuration, so a
//! single shop configured in `waymark.toml` needs none of it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

use super::{Channel, EmailAddress, InvalidField, Trigger};

/// A merchant's settings, stored as one JSON document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MerchantSettings {
    pub branding: Branding,
    pub notifications: NotificationSettings,
    /// What customers may change about a delivery on the tracking page, and what waits for
    /// the merchant's approval.
    pub delivery_changes: super::DeliveryChangePolicy,
}

/// How the merchant's emails and tracking page present the shop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Branding {
    /// The name emails come from and are signed with ("Kwiaciarnia Róża").
    pub sender_name: Option<String>,
    /// The address emails come from; it must be one the SMTP relay may send as.
    pub sender_address: Option<String>,
    /// Where customers' replies go (the shop's support inbox).
    pub reply_to: Option<String>,
    /// An https image shown at the top of emails and the tracking page.
    pub logo_url: Option<String>,
    /// `#rrggbb`: headings and buttons.
    pub primary_colour: Option<String>,
    /// Where customers reach the shop.
    pub support_email: Option<String>,
    /// An https page where customers reach the shop.
    pub support_url: Option<String>,
    /// The shop's legal line under every email (company, address, registration).
    pub legal_footer: Option<String>,
    /// What customers are written to in when their own language is not given or not one
    /// Waymark writes; the tracking page tries the browser's languages first. Unset: English.
    pub language: Option<super::Language>,
}

/// When and whether the merchant's messages go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationSettings {
    /// The window in each customer's own time zone in which nothing is sent; unset: the
    /// configuration's.
    pub quiet_hours: Option<QuietHoursSetting>,
    /// At most one "delayed" message per shipment this often; 0 for no limit; unset: the
    /// configuration's.
    pub delayed_message_every_hours: Option<u32>,
    /// Which channels each trigger goes to; a trigger left out goes to email, one with no
    /// channels is not sent at all.
    #[schema(value_type = BTreeMap<String, Vec<Channel>>)]
    pub channels: BTreeMap<Trigger, Vec<Channel>>,
}

/// A quiet window, `HH:MM` to `HH:MM` (across midnight when the end is earlier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHoursSetting {
    pub enabled: bool,
    #[schema(example = "21:00")]
    pub start: String,
    #[schema(example = "08:00")]
    pub end: String,
}

impl MerchantSettings {
    /// Every problem, each naming its field.
    pub fn check(&self) -> Vec<InvalidField> {
        let mut problems = Vec::new();
        let b = &self.branding;
        let mut text = |field: &'static str, value: &Option<String>, max: usize| {
            if let Some(v) = value
                && (v.trim().is_empty() || v.chars().count() > max || v.contains(['\r', '\n']))
            {
                problems.push(InvalidField::new(
                    field,
                    format!("must be 1 to {max} characters on one line"),
                ));
            }
        };
        text("branding.sender_name", &b.sender_name, 100);
        text("branding.support_url", &b.support_url, 500);
        text("branding.logo_url", &b.logo_url, 500);
        for (field, value) in [
            ("branding.sender_address", &b.sender_address),
            ("branding.reply_to", &b.reply_to),
            ("branding.support_email", &b.support_email),
        ] {
            if let Some(address) = value
                && let Err(e) = EmailAddress::parse(address)
            {
                problems.push(InvalidField::new(field, e.reason));
            }
        }
        for (field, value) in [
            ("branding.logo_url", &b.logo_url),
            ("branding.support_url", &b.support_url),
        ] {
            if let Some(url) = value {
                let https = reqwest::Url::parse(url.trim())
                    .is_ok_and(|u| u.scheme() == "https" && u.host().is_some());
                if !https {
                    problems.push(InvalidField::new(field, "must be an https URL"));
                }
            }
        }
        if let Some(colour) = &b.primary_colour {
            let hex = colour.len() == 7
                && colour.starts_with('#')
                && colour[1..].chars().all(|c| c.is_ascii_hexdigit());
            if !hex {
                problems.push(InvalidField::new(
                    "branding.primary_colour",
                    "must be #rrggbb",
                ));
            }
        }
        if let Some(footer) = &b.legal_footer
            && (footer.trim().is_empty() || footer.chars().count() > 500)
        {
            problems.push(InvalidField::new(
                "branding.legal_footer",
                "must be 1 to 500 characters",
            ));
        }
        if let Some(quiet) = &self.notifications.quiet_hours {
            for (field, value) in [
                ("notifications.quiet_hours.start", &quiet.start),
                ("notifications.quiet_hours.end", &quiet.end),
            ] {
                if jiff::civil::Time::strptime("%H:%M", value).is_err() {
                    problems.push(InvalidField::new(field, "must be HH:MM"));
                }
            }
        }
        problems.extend(self.delivery_changes.check());
        problems
    }

    /// Whether the merchant sends `trigger` over `channel`.
    pub fn sends(&self, trigger: Trigger, channel: Channel) -> bool {
        self.notifications
            .channels
            .get(&trigger)
            .is_none_or(|channels| channels.contains(&channel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_settings_send_everything_by_email() {
        let settings = MerchantSettings::default();
        assert!(settings.check().is_empty());
        assert!(
            Trigger::ALL
                .iter()
                .all(|t| settings.sends(*t, Channel::Email))
        );
    }

    #[test]
    fn a_trigger_without_channels_is_not_sent() {
        let settings: MerchantSettings =
            serde_json::from_str(r#"{"notifications": {"channels": {"delayed": []}}}"#).unwrap();
        assert!(!settings.sends(Trigger::Delayed, Channel::Email));
        assert!(settings.sends(Trigger::Delivered, Channel::Email));
    }

    #[test]
    fn each_wrong_setting_is_named() {
        let settings: MerchantSettings = serde_json::from_str(
            r##"{"branding": {"sender_address": "nope", "logo_url": "http://x.example/l.png",
                             "primary_colour": "red", "legal_footer": " "},
                "notifications": {"quiet_hours": {"enabled": true, "start": "9pm", "end": "08:00"}}}"##,
        )
        .unwrap();
        let fields: Vec<&str> = settings.check().iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "branding.sender_address",
                "branding.logo_url",
                "branding.primary_colour",
                "branding.legal_footer",
                "notifications.quiet_hours.start"
            ]
        );
        assert!(serde_json::from_str::<MerchantSettings>(r#"{"brand": {}}"#).is_err());
    }
}
