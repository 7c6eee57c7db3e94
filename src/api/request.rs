//! Reading requests the way GitLab accepts them: parameters from the query
//! string, a JSON body or a form body (merged), `PRIVATE-TOKEN` or Bearer
//! auth, and responses as `application/json`.

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde_json::{Map, Value};

use super::{ApiError, ApiState};
use crate::store::{ApiToken, Scope, User};

/// Request parameters, merged from query string and body; later sources win.
#[derive(Debug, Default)]
pub struct Params {
    values: Map<String, Value>,
}

impl Params {
    pub fn from_query(query: Option<&str>) -> Params {
        let mut params = Params::default();
        if let Some(query) = query {
            params.merge_form(query.as_bytes());
        }
        params
    }

    fn merge_form(&mut self, bytes: &[u8]) {
        for (key, value) in form_urlencoded::parse(bytes) {
            let key = key.into_owned();
            let value = value.into_owned();
            if let Some(base) = key.strip_suffix("[]") {
                let entry = self
                    .values
                    .entry(base.to_string())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = entry {
                    items.push(Value::String(value));
                } else {
                    *entry = Value::Array(vec![Value::String(value)]);
                }
            } else {
                self.values.insert(key, Value::String(value));
            }
        }
    }

    /// Reads the body (bounded by `limit`) as JSON or form data and merges it.
    pub async fn merge_body(
        &mut self,
        request: Request<Incoming>,
        limit: usize,
    ) -> Result<(), ApiError> {
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let body = Limited::new(request.into_body(), limit)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    ApiError::TooLarge
                } else {
                    ApiError::BadRequest("could not read the request body".into())
                }
            })?
            .to_bytes();
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        if content_type.starts_with("application/json")
            || content_type.is_empty() && body.first() == Some(&b'{')
        {
            let value: Value = serde_json::from_slice(&body)
                .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
            let Value::Object(map) = value else {
                return Err(ApiError::BadRequest("body must be a JSON object".into()));
            };
            self.values.extend(map);
            Ok(())
        } else if content_type.starts_with("application/x-www-form-urlencoded")
            || content_type.is_empty()
        {
            self.merge_form(&body);
            Ok(())
        } else {
            Err(ApiError::UnsupportedMediaType)
        }
    }

    /// A string parameter; numbers are accepted and turned into text.
    pub fn string(&self, key: &'static str) -> Result<Option<String>, ApiError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(ApiError::BadRequest(format!("{key} is invalid"))),
        }
    }

    /// A boolean parameter: `true`/`false`, or GitLab's `"true"`, `"1"` …
    pub fn bool(&self, key: &'static str) -> Result<Option<bool>, ApiError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "t" => Ok(Some(true)),
                "false" | "0" | "no" | "f" => Ok(Some(false)),
                "" => Ok(None),
                _ => Err(ApiError::BadRequest(format!("{key} is invalid"))),
            },
            Some(Value::Number(n)) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => {
                Ok(Some(n.as_u64() == Some(1)))
            }
            Some(_) => Err(ApiError::BadRequest(format!("{key} is invalid"))),
        }
    }

    /// The raw JSON value of a parameter, for structured ones.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// A list parameter: a JSON array, `key[]=a&key[]=b`, or `"a,b"`.
    pub fn list(&self, key: &'static str) -> Result<Option<Vec<String>>, ApiError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            )),
            Some(Value::Number(n)) => Ok(Some(vec![n.to_string()])),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.trim().to_string()),
                    Value::Number(n) => Ok(n.to_string()),
                    _ => Err(ApiError::BadRequest(format!("{key} is invalid"))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ApiError::BadRequest(format!("{key} is invalid"))),
        }
    }

    /// A list of ids (`assignee_ids[]=1`, `[1, "2"]`, `"1,2"`).
    pub fn ids(&self, key: &'static str) -> Result<Option<Vec<u64>>, ApiError> {
        self.list(key)?
            .map(|items| {
                items
                    .iter()
                    .map(|i| {
                        i.parse::<u64>()
                            .map_err(|_| ApiError::BadRequest(format!("{key} is invalid")))
                    })
                    .collect()
            })
            .transpose()
    }

    /// A non-negative integer (id) as a number or numeric string.
    pub fn id(&self, key: &'static str) -> Result<Option<u64>, ApiError> {
        match self.i64(key)? {
            None => Ok(None),
            Some(n) if n >= 0 => Ok(Some(n as u64)),
            Some(_) => Err(ApiError::BadRequest(format!("{key} is invalid"))),
        }
    }

    /// An ISO 8601 date or date-time, as milliseconds since the epoch.
    pub fn datetime(&self, key: &'static str) -> Result<Option<i64>, ApiError> {
        let Some(text) = self.string(key)? else {
            return Ok(None);
        };
        parse_datetime(&text)
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest(format!("{key} is invalid")))
    }

    /// An integer parameter, as a number or a numeric string.
    pub fn i64(&self, key: &'static str) -> Result<Option<i64>, ApiError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| ApiError::BadRequest(format!("{key} is invalid"))),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::BadRequest(format!("{key} is invalid"))),
            Some(_) => Err(ApiError::BadRequest(format!("{key} is invalid"))),
        }
    }
}

/// The authenticated caller.
pub struct Caller {
    pub user: User,
    pub token: ApiToken,
}

impl Caller {
    /// Writes need the `api` scope; `read_api` tokens get 403.
    pub fn require_write(&self) -> Result<(), ApiError> {
        if self.token.scopes.contains(&Scope::Api) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.user.is_admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// Authenticates `PRIVATE-TOKEN: <t>` or `Authorization: Bearer <t>`.
pub async fn authenticate(
    state: &ApiState,
    request: &Request<Incoming>,
) -> Result<Caller, ApiError> {
    let headers = request.headers();
    let presented = headers
        .get("private-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .or_else(|| {
            headers
                .get(hyper::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)
        })
        .filter(|t| !t.is_empty() && t.len() <= 256)
        .ok_or(ApiError::Unauthorized)?
        .to_string();
    let found = state.read(move |store| store.token(&presented)).await?;
    match found {
        Some((token, user))
            if !token.revoked
                && !user.bot
                && !user.blocked
                && !token
                    .expires_at
                    .as_deref()
                    .is_some_and(super::users::is_past_date) =>
        {
            Ok(Caller { user, token })
        }
        _ => Err(ApiError::Unauthorized),
    }
}

/// A JSON response with GitLab's content type.
pub fn json_response(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `2026-01-02`, `2026-01-02T03:04:05Z`, `…+01:00`, `….123Z` → ms since the epoch.
pub fn parse_datetime(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.len() == 10 {
        return mail_parser::DateTime::parse_rfc3339(&format!("{text}T00:00:00Z"))
            .filter(is_calendar_time)
            .map(|d| d.to_timestamp() * 1000);
    }
    // Drop fractional seconds, which the RFC 3339 parser may not take.
    let (main, millis) = match text.find('.') {
        Some(dot) => {
            let rest = &text[dot + 1..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let zone = &rest[digits.len()..];
            let millis = format!("{digits:0<3}").get(..3)?.parse::<i64>().ok()?;
            (format!("{}{}", &text[..dot], zone), millis)
        }
        None => (text.to_string(), 0),
    };
    let main = if main.ends_with('Z')
        || main.contains('+')
        || main.get(10..).unwrap_or("").contains('-')
    {
        main
    } else {
        format!("{main}Z")
    };
    mail_parser::DateTime::parse_rfc3339(&main)
        .filter(is_calendar_time)
        .map(|d| d.to_timestamp() * 1000 + millis)
}

/// The RFC 3339 parser reads the digits without checking their ranges
/// (`2026-13-45` passes); this refuses what no calendar or clock has.
fn is_calendar_time(d: &mail_parser::DateTime) -> bool {
    let leap =
        d.year.is_multiple_of(4) && (!d.year.is_multiple_of(100) || d.year.is_multiple_of(400));
    let days = match d.month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d.day)
        && d.hour < 24
        && d.minute < 60
        && d.second < 61
        && d.tz_hour < 24
        && d.tz_minute < 60
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_datetime("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_datetime("1970-01-01T00:00:01.250Z"), Some(1250));
        for impossible in [
            "2026-13-45",
            "2026-02-29",
            "2026-01-01T24:00:00Z",
            "2026-04-31",
        ] {
            assert_eq!(parse_datetime(impossible), None, "{impossible}");
        }
        assert!(parse_datetime("2024-02-29").is_some());
        assert_eq!(parse_datetime("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_datetime("yesterday"), None);
        assert_eq!(parse_datetime(""), None);
    }

    #[test]
    fn list_forms() {
        let p = Params::from_query(Some("labels=a,b&x[]=1&x[]=2"));
        assert_eq!(
            p.list("labels").unwrap(),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(p.ids("x").unwrap(), Some(vec![1, 2]));
    }
}
