//! The audit log: append-only, read newest first through an [`AuditQuery`].
//! The filter is assembled from fixed SQL fragments with numbered parameters;
//! values are only ever bound, never written into the SQL text.

use sqlx::any::AnyRow;

use super::{column, AuditEvent, AuditQuery, Store, StoreError};

/// How many events a query returns when it names no limit.
pub const DEFAULT_AUDIT_LIMIT: u32 = 100;
/// The most events one query returns.
pub const MAX_AUDIT_LIMIT: u32 = 10_000;

fn event_from_row(row: &AnyRow) -> Result<AuditEvent, StoreError> {
    let id: i64 = column(row, "id")?;
    let detail: String = column(row, "detail")?;
    let detail =
        serde_json::from_str(&detail).map_err(|err| StoreError::Corrupt(format!("audit event {id} detail: {err}")))?;
    Ok(AuditEvent {
        id,
        at: column(row, "at")?,
        event: column(row, "event")?,
        client_id: column(row, "client_id")?,
        subject: column(row, "subject")?,
        request_id: column(row, "request_id")?,
        detail,
    })
}

/// A value bound into the audit filter.
enum Param<'a> {
    Text(&'a str),
    Int(i64),
}

/// `WHERE ..` and the values it binds, in parameter order, then the limit.
fn filter(query: &AuditQuery) -> (String, Vec<Param<'_>>) {
    let texts = [
        ("subject", &query.subject),
        ("client_id", &query.client_id),
        ("request_id", &query.request_id),
    ];
    let texts = texts
        .into_iter()
        .filter_map(|(column, value)| Some((column, "=", Param::Text(value.as_deref()?))));
    let times = [("at", ">=", query.since), ("at", "<", query.until)];
    let times = times
        .into_iter()
        .filter_map(|(column, op, value)| Some((column, op, Param::Int(value?))));
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    for (column, op, param) in texts.chain(times) {
        params.push(param);
        conditions.push(format!("{column} {op} ${}", params.len()));
    }
    let limit = match query.limit {
        0 => DEFAULT_AUDIT_LIMIT,
        n => n.min(MAX_AUDIT_LIMIT),
    };
    params.push(Param::Int(i64::from(limit)));
    let mut sql = String::from("SELECT id, at, event, client_id, subject, request_id, detail FROM audit_events");
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(&format!(" ORDER BY at DESC, id DESC LIMIT ${}", params.len()));
    (sql, params)
}

impl Store {
    /// Appends an event and returns the id it was given (`event.id` is ignored).
    #[tracing::instrument(level = "debug", skip_all, fields(event = %event.event), err(level = "debug"))]
    pub async fn append_audit(&self, event: &AuditEvent) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO audit_events (at, event, client_id, subject, request_id, detail) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(event.at)
        .bind(event.event.as_str())
        .bind(event.client_id.as_deref())
        .bind(event.subject.as_deref())
        .bind(event.request_id.as_deref())
        .bind(event.detail.to_string())
        .fetch_one(&self.pool)
        .await?;
        column(&row, "id")
    }

    /// The events matching every filter of `query`, newest first, at most
    /// `query.limit` of them (0 means [`DEFAULT_AUDIT_LIMIT`], and no query
    /// returns more than [`MAX_AUDIT_LIMIT`]).
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let (sql, params) = filter(query);
        let statement = params
            .into_iter()
            .fold(sqlx::query(&sql), |statement, param| match param {
                Param::Text(value) => statement.bind(value),
                Param::Int(value) => statement.bind(value),
            });
        let rows = statement.fetch_all(&self.pool).await?;
        rows.iter().map(event_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_binds_values_and_numbers_parameters_in_order() {
        let query = AuditQuery {
            subject: Some("alice'; DROP TABLE audit_events; --".into()),
            request_id: Some("r1".into()),
            since: Some(10),
            limit: 0,
            ..AuditQuery::default()
        };
        let (sql, params) = filter(&query);
        assert_eq!(
            sql,
            "SELECT id, at, event, client_id, subject, request_id, detail FROM audit_events \
             WHERE subject = $1 AND request_id = $2 AND at >= $3 ORDER BY at DESC, id DESC LIMIT $4"
        );
        assert!(!sql.contains("alice"));
        assert!(matches!(
            params.as_slice(),
            [Param::Text(_), Param::Text("r1"), Param::Int(10), Param::Int(100)]
        ));
        let capped = AuditQuery {
            limit: 50_000,
            ..AuditQuery::default()
        };
        let (sql, params) = filter(&capped);
        assert!(sql.ends_with("FROM audit_events ORDER BY at DESC, id DESC LIMIT $1"));
        assert!(matches!(params.as_slice(), [Param::Int(10_000)]));
    }
}
