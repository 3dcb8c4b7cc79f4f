//! Delivery by SES v2: the same messages the embedded outbox holds.

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use domain::{Error, Mailer, OutgoingEmail};

use crate::unexpected;

pub struct SesMailer {
    client: Client,
    from: String,
}

impl SesMailer {
    pub fn new(client: Client, from: String) -> Self {
        Self { client, from }
    }
}

fn content(data: &str) -> Result<Content, Error> {
    Content::builder().data(data).charset("UTF-8").build().map_err(|e| unexpected(e, "building an SES message"))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, message: &OutgoingEmail) -> Result<(), Error> {
        let email = EmailContent::builder()
            .simple(
                Message::builder()
                    .subject(content(&message.subject)?)
                    .body(
                        Body::builder()
                            .text(content(&message.text_body)?)
                            .set_html(message.html_body.as_deref().map(content).transpose()?)
                            .build(),
                    )
                    .build(),
            )
            .build();
        let sent = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(message.to.as_str()).build())
            .content(email)
            .send()
            .await
            .map_err(|e| unexpected(e, "SES SendEmail"))?;
        tracing::info!(message_id = sent.message_id().unwrap_or_default(), subject = %message.subject, "email sent by SES");
        Ok(())
    }
}
