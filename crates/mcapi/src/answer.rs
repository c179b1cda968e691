//! Which upstream answers can belong to a request (§5.1): the backend answers a session start
//! `201` with a `Location`, a downloaded batch `201`, an event `204` and never with a
//! `Location`. A `2xx` or `3xx` answer of another shape, or a `Location` anywhere else, cannot
//! be the answer to the request that was sent: it is a late or stray answer on a reused
//! connection (an answer meant for an earlier request), and relaying it could hand one player
//! another player's session. The gateway answers 502 instead and drops the connection. Other
//! statuses (a load balancer's 429 or 503, a 500) are relayed as they come.

use crate::route::Route;

/// Whether an answer with `status` (and a `Location` field or not) can be the upstream's
/// answer to a request on `route`.
pub fn fits(route: Route, status: u16, has_location: bool) -> bool {
    let success_or_redirect = (200..400).contains(&status);
    match route {
        Route::Sessions | Route::Downloaded => {
            if success_or_redirect {
                status == 201
            } else {
                !has_location
            }
        }
        Route::Events => !has_location && (!success_or_redirect || status == 204),
        // Schemas are plain GETs; anything goes (a Location is still checked for safety).
        Route::Schemas | Route::Unknown => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_documented_shapes_fit() {
        assert!(fits(Route::Sessions, 201, true));
        assert!(fits(Route::Downloaded, 201, false));
        assert!(fits(Route::Downloaded, 201, true));
        assert!(
            !fits(Route::Sessions, 204, false),
            "a 204 to a session start"
        );
        assert!(!fits(Route::Sessions, 200, false));
        assert!(!fits(Route::Sessions, 302, true));
        assert!(fits(Route::Sessions, 400, false));
        assert!(fits(Route::Sessions, 503, false));
        assert!(!fits(Route::Sessions, 503, true));
        assert!(fits(Route::Events, 204, false));
        assert!(!fits(Route::Events, 201, true), "a 201 to an event");
        assert!(!fits(Route::Events, 201, false));
        assert!(
            !fits(Route::Events, 204, true),
            "a Location on an event's answer"
        );
        assert!(fits(Route::Events, 404, false));
        assert!(fits(Route::Events, 410, false));
        assert!(fits(Route::Events, 429, false));
        assert!(!fits(Route::Events, 404, true));
        assert!(fits(Route::Schemas, 200, false));
        assert!(fits(Route::Schemas, 301, true));
    }
}
