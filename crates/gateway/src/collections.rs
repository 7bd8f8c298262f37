//! `GET/POST /v1/collections` and `DELETE /v1/collections/{name}`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use verity_core::{Collections, Scope};

use crate::auth::Authenticated;
use crate::error::ApiError;

/// The collections the caller may use, with the number of documents it may read in each.
pub async fn list(
    caller: Authenticated,
    collections: web::Data<dyn Collections>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller.require(Scope::Query)?;
    let list = collections.list_collections(&caller).await?;
    Ok(HttpResponse::Ok().json(json!({ "collections": list })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCollection {
    name: String,
    /// The access groups its documents get when their upload or ingest names none.
    #[serde(default)]
    groups: Vec<String>,
}

/// Creates an empty collection (admin scope): 201, or 200 when it existed already.
pub async fn create(
    caller: Authenticated,
    collections: web::Data<dyn Collections>,
    body: web::Json<NewCollection>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller.require(Scope::Admin)?;
    let NewCollection { name, groups } = body.into_inner();
    let created = collections
        .create_collection(&caller, &name, &groups)
        .await?;
    let body = json!({"name": name, "created": created});
    Ok(if created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// Removes a collection with its documents, chunks and vectors (admin scope).
pub async fn delete(
    caller: Authenticated,
    collections: web::Data<dyn Collections>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller.require(Scope::Admin)?;
    let name = name.into_inner();
    let removed = collections.delete_collection(&caller, &name).await?;
    Ok(HttpResponse::Ok().json(json!({"name": name, "documents_removed": removed})))
}
