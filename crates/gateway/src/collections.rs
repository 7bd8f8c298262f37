//! `GET/POST /v1/collections` and `DELETE /v1/collections/{name}`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use verity_core::Collections;

use crate::auth::Authenticated;
use crate::error::ApiError;

/// The collections the caller may use, with the number of documents it may read in each.
#[utoipa::path(get, path = "/v1/collections", tag = "collections",
    summary = "The collections the caller may use, with the documents it may read in each",
    responses((status = 200, description = "The list", body = crate::openapi::CollectionList),
              (status = 401, description = "No valid key or token", body = crate::openapi::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(
    Authenticated(caller): Authenticated,
    collections: web::Data<dyn Collections>,
) -> Result<HttpResponse, ApiError> {
    let list = collections.list_collections(&caller).await?;
    Ok(HttpResponse::Ok().json(json!({ "collections": list })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCollection {
    name: String,
    /// The access groups its documents get when their upload or ingest names none.
    #[serde(default)]
    groups: Vec<String>,
}

/// Creates an empty collection (admin scope): 201, or 200 when it existed already.
#[utoipa::path(post, path = "/v1/collections", tag = "collections",
    summary = "Create an empty collection (admin scope)",
    request_body = NewCollection,
    responses((status = 201, description = "`{\"name\", \"created\": true}`"),
              (status = 200, description = "It existed: `{\"name\", \"created\": false}`"),
              (status = 400, description = "Invalid name", body = crate::openapi::ErrorEnvelope),
              (status = 403, description = "No admin scope, or a collection the key may not use", body = crate::openapi::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create(
    Authenticated(caller): Authenticated,
    collections: web::Data<dyn Collections>,
    body: web::Json<NewCollection>,
) -> Result<HttpResponse, ApiError> {
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
#[utoipa::path(delete, path = "/v1/collections/{name}", tag = "collections",
    summary = "Remove a collection with its documents, chunks and vectors (admin scope)",
    params(("name" = String, Path, description = "The collection")),
    responses((status = 200, description = "`{\"name\", \"documents_removed\"}`"),
              (status = 403, description = "No admin scope", body = crate::openapi::ErrorEnvelope),
              (status = 404, description = "Unknown collection (or one the key may not use)", body = crate::openapi::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn delete(
    Authenticated(caller): Authenticated,
    collections: web::Data<dyn Collections>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let removed = collections.delete_collection(&caller, &name).await?;
    Ok(HttpResponse::Ok().json(json!({"name": name, "documents_removed": removed})))
}
