//! GitLab's offset pagination: `page`/`per_page` in, `X-Total`, `X-Page`,
//! `X-Per-Page`, `X-Next-Page`, `X-Prev-Page`, `X-Total-Pages` and `Link` out.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::HeaderValue;
use hyper::Response;

use super::request::Params;
use super::ApiError;

/// GitLab's default and maximum page sizes.
const DEFAULT_PER_PAGE: u64 = 20;
const MAX_PER_PAGE: u64 = 100;
/// Pages past this are refused rather than scanned for.
const MAX_PAGE: u64 = 1_000_000;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: u64,
    pub per_page: u64,
}

impl Page {
    /// Reads `page` and `per_page`. Negative, zero or absurd values are a 400
    /// (issue #4 asks for refusal where GitLab would clamp), as are non-numbers.
    pub fn from_params(params: &Params) -> Result<Page, ApiError> {
        let page = params.i64("page")?.unwrap_or(1);
        if !(1..=MAX_PAGE as i64).contains(&page) {
            return Err(ApiError::BadRequest(format!(
                "page must be between 1 and {MAX_PAGE}"
            )));
        }
        let per_page = params.i64("per_page")?.unwrap_or(DEFAULT_PER_PAGE as i64);
        if !(1..=MAX_PER_PAGE as i64).contains(&per_page) {
            return Err(ApiError::BadRequest(format!(
                "per_page must be between 1 and {MAX_PER_PAGE}"
            )));
        }
        Ok(Page {
            page: page as u64,
            per_page: per_page as u64,
        })
    }

    pub fn offset(&self) -> u64 {
        (self.page - 1) * self.per_page
    }

    /// Like [`Page::decorate`] when the total may be unknown (over the count
    /// cap): then, as GitLab, `X-Total` and `X-Total-Pages` are left out and
    /// `X-Next-Page` follows `more`.
    pub fn decorate_partial(
        &self,
        response: &mut Response<Full<Bytes>>,
        url: &str,
        query: Option<&str>,
        total: Option<u64>,
        more: bool,
    ) {
        match total {
            Some(total) => self.decorate(response, url, query, total),
            None => {
                // Pretend one more page exists, then drop what we cannot know.
                let known = self.offset() + self.per_page * 2;
                self.decorate(response, url, query, known);
                let headers = response.headers_mut();
                headers.remove("x-total");
                headers.remove("x-total-pages");
                if !more {
                    headers.insert("x-next-page", HeaderValue::from_static(""));
                }
            }
        }
    }

    /// Keyset pagination: only a `Link: <…cursor=…>; rel="next"` header.
    pub fn decorate_keyset(
        &self,
        response: &mut Response<Full<Bytes>>,
        url: &str,
        query: Option<&str>,
        cursor: &str,
    ) {
        let mut out = form_urlencoded::Serializer::new(String::new());
        if let Some(query) = query {
            for (k, v) in form_urlencoded::parse(query.as_bytes()) {
                if k != "cursor" && k != "page" {
                    out.append_pair(&k, &v);
                }
            }
        }
        out.append_pair("cursor", cursor);
        let link = format!("<{url}?{}>; rel=\"next\"", out.finish());
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert("link", value);
        }
        response
            .headers_mut()
            .insert("x-per-page", HeaderValue::from(self.per_page));
    }

    /// Adds the pagination headers for a result of `total` items.
    pub fn decorate(
        &self,
        response: &mut Response<Full<Bytes>>,
        url: &str,
        query: Option<&str>,
        total: u64,
    ) {
        let total_pages = total.div_ceil(self.per_page).max(1);
        let next = (self.page < total_pages).then_some(self.page + 1);
        let prev = (self.page > 1).then(|| (self.page - 1).min(total_pages));
        let link_to = |page: u64| {
            let mut query_out = form_urlencoded::Serializer::new(String::new());
            if let Some(query) = query {
                for (k, v) in form_urlencoded::parse(query.as_bytes()) {
                    if k != "page" && k != "per_page" {
                        query_out.append_pair(&k, &v);
                    }
                }
            }
            query_out.append_pair("page", &page.to_string());
            query_out.append_pair("per_page", &self.per_page.to_string());
            format!("{url}?{}", query_out.finish())
        };
        let mut links = Vec::new();
        if let Some(prev) = prev {
            links.push(format!("<{}>; rel=\"prev\"", link_to(prev)));
        }
        if let Some(next) = next {
            links.push(format!("<{}>; rel=\"next\"", link_to(next)));
        }
        links.push(format!("<{}>; rel=\"first\"", link_to(1)));
        links.push(format!("<{}>; rel=\"last\"", link_to(total_pages)));
        let headers = response.headers_mut();
        let mut set = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        };
        set("x-total", total.to_string());
        set("x-total-pages", total_pages.to_string());
        set("x-page", self.page.to_string());
        set("x-per-page", self.per_page.to_string());
        set(
            "x-next-page",
            next.map(|n| n.to_string()).unwrap_or_default(),
        );
        set(
            "x-prev-page",
            prev.map(|n| n.to_string()).unwrap_or_default(),
        );
        set("link", links.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_values_are_refused() {
        for query in [
            "page=-5",
            "page=0",
            "per_page=0",
            "per_page=100000",
            "per_page=-1",
            "page=2000000",
        ] {
            let params = Params::from_query(Some(query));
            assert!(Page::from_params(&params).is_err(), "{query}");
        }
        let params = Params::from_query(Some("page=3&per_page=100"));
        assert_eq!(
            Page::from_params(&params).unwrap(),
            Page {
                page: 3,
                per_page: 100
            }
        );
    }

    #[test]
    fn non_numbers_are_refused() {
        let params = Params::from_query(Some("page=abc"));
        assert!(Page::from_params(&params).is_err());
    }

    #[test]
    fn link_header_keeps_filters() {
        let page = Page {
            page: 1,
            per_page: 2,
        };
        let mut response = Response::new(Full::new(Bytes::new()));
        page.decorate(
            &mut response,
            "http://x/api/v4/projects/1/issues",
            Some("state=opened&page=1"),
            5,
        );
        let link = response.headers()["link"].to_str().unwrap().to_string();
        assert!(
            link.contains(
                "<http://x/api/v4/projects/1/issues?state=opened&page=2&per_page=2>; rel=\"next\""
            ),
            "{link}"
        );
        assert_eq!(response.headers()["x-next-page"], "2");
        assert_eq!(response.headers()["x-total-pages"], "3");
    }
}
