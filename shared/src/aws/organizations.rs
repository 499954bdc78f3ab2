//! [`AwsOrganization`]: the accounts of the organization, or of one OU recursively, for
//! `AMI_LIFECYCLE_ACCOUNTS` (`org`, `ou:…`). Called from the hub, which must be the
//! management account or a delegated administrator (`AccessDeniedException` otherwise).
//!
//! `DescribeOrganization` gives the organization's ARN (`SHARE_ALLOWED=org`).
//!
//! `ListAccounts`, `ListAccountsForParent` and `ListOrganizationalUnitsForParent`: every
//! page (`MaxResults` 1–20 in the model, `NextToken`). Organizations is a global service:
//! the SDK resolves its one endpoint from any region of the partition.

use async_trait::async_trait;
use aws_sdk_organizations::types::Account;
use aws_sdk_organizations::Client;

use super::errors::cloud_error;
use crate::accounts::OrgAccount;
use crate::error::CloudResult;
use crate::model::AccountId;
use crate::ports::Organization;

/// `MaxResults` of the three list operations: the model allows 1–20.
const PAGE: i32 = 20;

/// How deep OUs are followed: Organizations allows five levels under the root.
const MAX_OU_DEPTH: usize = 5;

#[derive(Debug, Clone)]
pub struct AwsOrganization {
    client: Client,
}

impl AwsOrganization {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    async fn accounts_for_parent(&self, parent: &str) -> CloudResult<Vec<OrgAccount>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_accounts_for_parent()
                .parent_id(parent)
                .max_results(PAGE)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| cloud_error("ListAccountsForParent", None, e))?;
            out.extend(page.accounts().iter().filter_map(account));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    async fn child_ous(&self, parent: &str) -> CloudResult<Vec<String>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_organizational_units_for_parent()
                .parent_id(parent)
                .max_results(PAGE)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| cloud_error("ListOrganizationalUnitsForParent", None, e))?;
            out.extend(
                page.organizational_units()
                    .iter()
                    .filter_map(|ou| ou.id().map(str::to_owned)),
            );
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }
}

/// An SDK account; its `State` when given (the newer field), else its `Status`.
fn account(a: &Account) -> Option<OrgAccount> {
    let id = AccountId::parse(a.id()?)?;
    let status = a
        .state()
        .map(|s| s.as_str().to_owned())
        .or_else(|| a.status().map(|s| s.as_str().to_owned()))
        .unwrap_or_default();
    Some(OrgAccount {
        id,
        name: a.name().unwrap_or_default().to_owned(),
        status,
    })
}

#[async_trait]
impl Organization for AwsOrganization {
    async fn accounts(&self) -> CloudResult<Vec<OrgAccount>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_accounts()
                .max_results(PAGE)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| cloud_error("ListAccounts", None, e))?;
            out.extend(page.accounts().iter().filter_map(account));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    async fn organization_arn(&self) -> CloudResult<String> {
        let out = self
            .client
            .describe_organization()
            .send()
            .await
            .map_err(|e| cloud_error("DescribeOrganization", None, e))?;
        out.organization()
            .and_then(|o| o.arn())
            .map(str::to_owned)
            .ok_or_else(|| {
                crate::error::CloudError::from_code(
                    "DescribeOrganization",
                    None,
                    "InvalidResponse",
                    "the answer has no organization ARN",
                )
            })
    }

    async fn accounts_under(&self, ou: &str) -> CloudResult<Vec<OrgAccount>> {
        let mut out = Vec::new();
        let mut level = vec![ou.to_owned()];
        for _ in 0..=MAX_OU_DEPTH {
            let mut next = Vec::new();
            for parent in &level {
                out.extend(self.accounts_for_parent(parent).await?);
                next.extend(self.child_ous(parent).await?);
            }
            if next.is_empty() {
                break;
            }
            level = next;
        }
        Ok(out)
    }
}
