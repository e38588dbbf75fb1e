//! The app as a state machine (actions in, screens out), and every screen as
//! an insta snapshot of a `TestBackend` (100×30, fixed clock and spinner).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use outband_protocol::{DeliveryMode, TokenType};
use outband_terminal::{InstructedAmount, Payment, Receipt, Refund, TokenSummary};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde_json::json;

use super::*;
use crate::action::{Lookup, OpenSale, SaleInfo, SaleResult};
use crate::components::sale::SaleDefaults;

/// 2027-01-15T08:00:00Z.
const NOW: i64 = 1_800_000_000;

fn till(enroll_link: Option<&str>) -> Till {
    Till {
        server: "http://127.0.0.1:8080".into(),
        currency: Currency::EUR,
        mode: DeliveryMode::Poll,
        sale: SaleDefaults {
            merchant: "Corner Café".into(),
            iban: None,
            prefix: None,
            requested_expiry: None,
            listen_url: "http://127.0.0.1:8090/ciba/notify".into(),
        },
        enroll_link: enroll_link.map(str::to_owned),
        receipt_url: None,
    }
}

fn app() -> App {
    App::new(till(None), Arc::new(|| NOW))
}

fn key(code: KeyCode) -> Action {
    Action::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ctrl(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

/// Applies `action` and everything it leads to; returns the actions the
/// worker would have seen.
fn feed(app: &mut App, action: Action) -> Vec<String> {
    let mut seen = Vec::new();
    let mut next = Some(action);
    while let Some(action) = next.take() {
        seen.push(
            format!("{action:?}")
                .split(['(', ' ', '{'])
                .next()
                .unwrap_or_default()
                .to_owned(),
        );
        next = app.update(action);
    }
    seen
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        feed(app, key(KeyCode::Char(c)));
    }
}

fn render(app: &App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    terminal.draw(|frame| app.draw(frame)).unwrap();
    terminal.backend().to_string()
}

fn info() -> SaleInfo {
    SaleInfo {
        code: "CORN-7Q2K".into(),
        binding_message: "CORN-7Q2K · EUR 12.50".into(),
        amount: "EUR 12.50".into(),
        customer: "alice@example.com".into(),
        reference: "INV-1001".into(),
        mode: DeliveryMode::Poll,
        started_at: NOW - 47,
        expires_at: NOW - 47 + 120,
        number_match: None,
        resumed: false,
    }
}

fn payment() -> Payment {
    Payment {
        payment_id: "pay_Q7f3k9XbT2".into(),
        status: "executed".into(),
        instructed_amount: InstructedAmount {
            currency: "EUR".into(),
            amount: "12.50".into(),
        },
        creditor_name: "Corner Café".into(),
        creditor_account: None,
        remittance_information_unstructured: Some("INV-1001".into()),
        debtor: Some("sub-alice".into()),
        client_id: Some("demo-pos".into()),
        created_at: "2027-01-15T08:00:03Z".into(),
        refunded_amount: Some("0.00".into()),
    }
}

fn receipt(payment: Option<Payment>) -> Receipt {
    Receipt {
        status: if payment.is_some() { "paid" } else { "approved" },
        amount: "12.50".into(),
        currency: "EUR".into(),
        payee: "Corner Café".into(),
        iban: None,
        reference: "INV-1001".into(),
        binding_message: "CORN-7Q2K · EUR 12.50".into(),
        customer: "alice@example.com".into(),
        approved_at: NOW,
        mode: DeliveryMode::Poll,
        token: TokenSummary {
            token_type: TokenType::Bearer,
            expires_in: Some(300),
            sub: Some("sub-alice".into()),
            scope: Some("openid payments".into()),
            exp: Some(NOW + 300),
            authorization_details: json!([]),
            refresh_token: false,
            id_token: true,
        },
        payment,
    }
}

fn finished(result: SaleResult) -> App {
    let mut app = app();
    feed(&mut app, Action::Started(Box::new(info())));
    feed(&mut app, Action::Finished(Box::new(result)));
    app
}

// ---- the state machine ----

#[test]
fn a_valid_form_starts_a_sale_and_the_result_leads_to_a_new_one() {
    let mut app = app();
    type_text(&mut app, "12,5");
    feed(&mut app, key(KeyCode::Tab));
    feed(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "alice@example.com");
    let seen = feed(&mut app, key(KeyCode::Enter));
    assert_eq!(seen, ["Key", "StartSale"]);
    assert!(matches!(app.screen, Screen::Waiting(_)));

    feed(&mut app, Action::Started(Box::new(info())));
    // Esc on the waiting screen asks the worker to cancel; the screen says so.
    assert_eq!(feed(&mut app, key(KeyCode::Esc)), ["Key", "CancelSale"]);
    assert!(render(&app).contains("cancelling the sale at the bank"));

    feed(
        &mut app,
        Action::Finished(Box::new(SaleResult::Cancelled {
            sale: info(),
            detail: "The request was withdrawn at the bank.".into(),
        })),
    );
    assert!(matches!(app.screen, Screen::Result(_)));
    assert_eq!(feed(&mut app, key(KeyCode::Enter)), ["Key", "NewSale"]);
    assert!(matches!(app.screen, Screen::Sale));
    assert!(!render(&app).contains("12.5"), "the form is empty again");
}

#[test]
fn an_invalid_form_stays_and_says_why() {
    let mut app = app();
    type_text(&mut app, "0");
    assert_eq!(feed(&mut app, key(KeyCode::Enter)), ["Key"]);
    assert!(matches!(app.screen, Screen::Sale));
    let screen = render(&app);
    assert!(screen.contains("the amount must be more than zero"), "{screen}");
    assert!(screen.contains("enter the customer's e-mail"), "{screen}");
}

#[test]
fn ctrl_c_while_waiting_cancels_first_and_quits_when_the_bank_answered() {
    let mut app = app();
    feed(&mut app, Action::Started(Box::new(info())));
    assert_eq!(feed(&mut app, ctrl('c')), ["Key", "CancelSale"]);
    assert!(!app.should_quit());
    feed(
        &mut app,
        Action::Finished(Box::new(SaleResult::Cancelled {
            sale: info(),
            detail: "withdrawn".into(),
        })),
    );
    assert!(app.should_quit());

    let mut idle = self::app();
    feed(&mut idle, ctrl('c'));
    assert!(idle.should_quit());
}

#[test]
fn open_sales_are_resumed_only_when_asked() {
    let mut app = app();
    let open = vec![OpenSale {
        reference: "INV-1001".into(),
        amount: "EUR 12.50".into(),
        customer: "alice@example.com".into(),
        state: "paying".into(),
    }];
    feed(&mut app, Action::RecoveryFound(open.clone()));
    assert!(matches!(app.screen, Screen::Recovery(_)));
    assert_eq!(feed(&mut app, key(KeyCode::Enter)), ["Key", "ResumeSales"]);
    assert!(matches!(app.screen, Screen::Sale));
    feed(
        &mut app,
        Action::Started(Box::new(SaleInfo {
            resumed: true,
            ..info()
        })),
    );
    assert!(render(&app).contains("(resumed after a restart)"));

    // Esc leaves them for later; an empty journal shows no prompt.
    let mut later = self::app();
    feed(&mut later, Action::RecoveryFound(open));
    assert_eq!(feed(&mut later, key(KeyCode::Esc)), ["Key", "NewSale"]);
    assert!(matches!(later.screen, Screen::Sale));
    feed(&mut later, Action::RecoveryFound(Vec::new()));
    assert!(matches!(later.screen, Screen::Sale));
}

#[test]
fn lookup_then_partial_refund() {
    let mut app = app();
    assert_eq!(feed(&mut app, key(KeyCode::F(3))), ["Key", "OpenLookup"]);
    type_text(&mut app, "INV-1001");
    assert_eq!(feed(&mut app, key(KeyCode::Enter)), ["Key", "LookupSales"]);
    feed(&mut app, lookup_found());
    feed(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "5");
    let mut next = app.update(key(KeyCode::Enter));
    match next.take() {
        Some(Action::Refund { payment_id, amount }) => {
            assert_eq!(payment_id, "pay_Q7f3k9XbT2");
            assert_eq!(amount.map(|a| a.to_string()).as_deref(), Some("5.00"));
        }
        other => panic!("expected a refund, got {other:?}"),
    }
    let mut after = payment();
    after.status = "partially_refunded".into();
    after.refunded_amount = Some("5.00".into());
    feed(
        &mut app,
        Action::Refunded(Ok(Box::new(Refund {
            refund_id: "ref_1".into(),
            payment_id: "pay_Q7f3k9XbT2".into(),
            amount: "5.00".into(),
            currency: "EUR".into(),
            created_at: "2027-01-15T08:05:00Z".into(),
            payment: after,
        }))),
    );
    let screen = render(&app);
    assert!(screen.contains("Refunded EUR 5.00 of pay_Q7f3k9XbT2"), "{screen}");
    assert!(screen.contains("partially_refunded"), "{screen}");
    assert_eq!(feed(&mut app, key(KeyCode::Esc)), ["Key", "NewSale"]);
}

#[test]
fn the_countdown_follows_the_clock() {
    let now = Arc::new(std::sync::atomic::AtomicI64::new(NOW));
    let clock = now.clone();
    let mut app = App::new(
        till(None),
        Arc::new(move || clock.load(std::sync::atomic::Ordering::SeqCst)),
    );
    feed(&mut app, Action::Started(Box::new(info())));
    assert!(render(&app).contains("1:13 left"));
    now.store(NOW + 60, std::sync::atomic::Ordering::SeqCst);
    feed(&mut app, Action::Tick);
    assert!(render(&app).contains("0:13 left"));
}

fn lookup_found() -> Action {
    Action::SalesFound(Box::new(Lookup {
        reference: "INV-1001".into(),
        sales: vec![OpenSale {
            reference: "INV-1001".into(),
            amount: "EUR 12.50".into(),
            customer: "alice@example.com".into(),
            state: "approved".into(),
        }],
        payments: Ok(vec![payment()]),
    }))
}

// ---- screens ----

#[test]
fn snapshot_sale_empty() {
    insta::assert_snapshot!(render(&app()));
}

#[test]
fn snapshot_sale_filled() {
    let mut app = app();
    type_text(&mut app, "12.50");
    feed(&mut app, key(KeyCode::Tab));
    feed(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "alice@example.com");
    feed(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "INV-1001");
    feed(&mut app, key(KeyCode::Tab));
    feed(&mut app, key(KeyCode::Right));
    insta::assert_snapshot!(render(&app));
}

#[test]
fn snapshot_sale_invalid() {
    let mut app = app();
    type_text(&mut app, "12.505");
    feed(&mut app, key(KeyCode::Tab));
    feed(&mut app, key(KeyCode::Backspace));
    feed(&mut app, key(KeyCode::Backspace));
    feed(&mut app, key(KeyCode::Backspace));
    type_text(&mut app, "JPY");
    feed(&mut app, key(KeyCode::Enter));
    insta::assert_snapshot!(render(&app));
}

#[test]
fn snapshot_waiting_sending() {
    let mut app = app();
    let mut sale = outband_terminal::SaleRequest::new(
        "12.50".parse().unwrap(),
        Currency::EUR,
        "alice@example.com",
        "Corner Café",
    );
    sale.reference = Some("INV-1001".into());
    feed(
        &mut app,
        Action::StartSale(Box::new(crate::action::SaleOrder {
            sale,
            mode: DeliveryMode::Poll,
        })),
    );
    insta::assert_snapshot!(render(&app));
}

#[test]
fn snapshot_waiting_countdown() {
    let mut app = app();
    feed(&mut app, Action::Started(Box::new(info())));
    feed(
        &mut app,
        Action::Progress("The bank asked to poll less often: every 10 s now.".into()),
    );
    insta::assert_snapshot!(render(&app));
}

#[test]
fn snapshot_result_paid() {
    insta::assert_snapshot!(render(&finished(SaleResult::Approved(Box::new(receipt(Some(
        payment()
    )))))));
}

#[test]
fn snapshot_result_approved_without_payments_api() {
    insta::assert_snapshot!(render(&finished(SaleResult::Approved(Box::new(receipt(None))))));
}

#[test]
fn snapshot_result_denied() {
    insta::assert_snapshot!(render(&finished(SaleResult::Denied {
        sale: info(),
        reason: Some("the customer said no".into()),
    })));
}

#[test]
fn snapshot_result_expired() {
    insta::assert_snapshot!(render(&finished(SaleResult::Expired { sale: info() })));
}

#[test]
fn snapshot_result_error() {
    insta::assert_snapshot!(render(&finished(SaleResult::Failed {
        sale: Some(info()),
        error: "unknown_user_id".into(),
        description: Some("no user matches the login_hint".into()),
        open: false,
    })));
}

#[test]
fn snapshot_result_error_still_open() {
    insta::assert_snapshot!(render(&finished(SaleResult::Failed {
        sale: Some(info()),
        error: "the payment's outcome is unknown".into(),
        description: Some("cannot reach the payments API".into()),
        open: true,
    })));
}

#[test]
fn snapshot_recovery_prompt() {
    let mut app = app();
    feed(
        &mut app,
        Action::RecoveryFound(vec![
            OpenSale {
                reference: "INV-1001".into(),
                amount: "EUR 12.50".into(),
                customer: "alice@example.com".into(),
                state: "paying".into(),
            },
            OpenSale {
                reference: "CORN-H4TX".into(),
                amount: "EUR 3.20".into(),
                customer: "bob".into(),
                state: "in_flight".into(),
            },
        ]),
    );
    insta::assert_snapshot!(render(&app));
}

#[test]
fn snapshot_lookup() {
    let mut app = app();
    feed(&mut app, key(KeyCode::F(3)));
    type_text(&mut app, "INV-1001");
    feed(&mut app, lookup_found());
    insta::assert_snapshot!(render(&app));
}

#[test]
fn snapshot_help_without_link() {
    let mut app = app();
    feed(&mut app, key(KeyCode::F(2)));
    insta::assert_snapshot!(render(&app));
}

#[test]
fn snapshot_help_with_link() {
    let mut app = App::new(till(Some("outband://enroll?code=K7PQ-2XMD")), Arc::new(|| NOW));
    feed(&mut app, key(KeyCode::F(2)));
    let mut terminal = Terminal::new(TestBackend::new(100, 44)).unwrap();
    terminal.draw(|frame| app.draw(frame)).unwrap();
    insta::assert_snapshot!(terminal.backend().to_string());
}

// ---- user code (CIBA user_code) and the receipt QR code ----

#[test]
fn the_user_code_field_shows_only_when_the_server_takes_one_and_is_sent_masked() {
    let mut app = app();
    assert!(!render(&app).contains("User code"), "hidden until discovery says so");
    feed(&mut app, Action::ServerFeatures { user_code: true });
    type_text(&mut app, "12.50");
    feed(&mut app, key(KeyCode::Tab));
    feed(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "alice@example.com");
    feed(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "INV-1001");
    feed(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "7391-blue");
    let screen = render(&app);
    assert!(screen.contains("User code"), "{screen}");
    assert!(screen.contains("•••••••••"), "{screen}");
    assert!(!screen.contains("7391-blue"), "the code is never shown: {screen}");
    insta::assert_snapshot!("snapshot_sale_with_user_code", screen);

    let Some(Action::StartSale(order)) = app.update(key(KeyCode::Enter)) else {
        panic!("the sale starts")
    };
    assert_eq!(order.sale.user_code, Some(outband_protocol::Password::new("7391-blue")));
    assert_eq!(order.sale.reference.as_deref(), Some("INV-1001"));
}

#[test]
fn an_empty_user_code_is_not_sent_and_a_server_without_it_hides_the_field() {
    let mut app = app();
    feed(&mut app, Action::ServerFeatures { user_code: true });
    type_text(&mut app, "12.50");
    feed(&mut app, key(KeyCode::Tab));
    feed(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "alice@example.com");
    feed(&mut app, key(KeyCode::Tab));
    feed(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "1234");
    feed(&mut app, Action::ServerFeatures { user_code: false });
    assert!(!render(&app).contains("User code"));
    let Some(Action::StartSale(order)) = app.update(key(KeyCode::Enter)) else {
        panic!("the sale starts")
    };
    assert_eq!(order.sale.user_code, None, "a hidden field sends nothing");
}

fn app_with_receipts() -> App {
    let mut till = till(None);
    till.receipt_url = Some("https://shop.example/r/{payment_id}".into());
    App::new(till, Arc::new(|| NOW))
}

#[test]
fn snapshot_result_paid_with_receipt_qr() {
    let mut app = app_with_receipts();
    feed(&mut app, Action::Started(Box::new(info())));
    feed(
        &mut app,
        Action::Finished(Box::new(SaleResult::Approved(Box::new(receipt(Some(payment())))))),
    );
    let Screen::Result(result) = &app.screen else {
        panic!("the result shows")
    };
    assert_eq!(result.receipt_link(), Some("https://shop.example/r/pay_Q7f3k9XbT2"));
    let screen = render(&app);
    assert!(screen.contains("Scan for your receipt"), "{screen}");
    assert!(screen.contains("PAYMENT EXECUTED"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn no_receipt_qr_without_a_payment_or_on_a_small_screen() {
    let mut app = app_with_receipts();
    feed(&mut app, Action::Started(Box::new(info())));
    feed(
        &mut app,
        Action::Finished(Box::new(SaleResult::Approved(Box::new(receipt(None))))),
    );
    let Screen::Result(result) = &app.screen else {
        panic!("the result shows")
    };
    assert_eq!(result.receipt_link(), None, "nothing was executed: no receipt to link");

    let mut app = app_with_receipts();
    feed(
        &mut app,
        Action::Finished(Box::new(SaleResult::Approved(Box::new(receipt(Some(payment())))))),
    );
    let mut terminal = Terminal::new(TestBackend::new(70, 20)).unwrap();
    terminal.draw(|frame| app.draw(frame)).unwrap();
    let screen = terminal.backend().to_string();
    assert!(!screen.contains("Scan for your receipt"), "{screen}");
    assert!(
        screen.contains("PAYMENT EXECUTED"),
        "the receipt itself still shows: {screen}"
    );
}
