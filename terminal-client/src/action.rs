//! Everything that happens in the TUI is an [`Action`]: key presses and ticks
//! (from `event`), what the shop assistant asks for (from the components), and
//! what the network tasks report (from `worker`). `App::update` folds them
//! into the state; `Worker::handle` starts the network work some of them ask for.

use crossterm::event::KeyEvent;
use outband_protocol::DeliveryMode;
use outband_terminal::{Amount, JournalEntry, Payment, Receipt, Refund, SaleRequest, Started};

/// One thing that happened.
#[derive(Debug)]
pub enum Action {
    /// Time passed (spinner, countdown).
    Tick,
    /// A key was pressed.
    Key(KeyEvent),
    /// The terminal changed size (draw again).
    Resize,
    /// Leave the program.
    Quit,
    /// Show or hide the enrollment help panel (F2).
    ToggleHelp,
    /// The sale screen's fields are valid: send the sale.
    StartSale(Box<SaleOrder>),
    /// The bank accepted the sale (or a journaled one was resumed): wait.
    Started(Box<SaleInfo>),
    /// Something to say while waiting (slow down, retrying, the bank answered).
    Progress(String),
    /// Esc on the waiting screen: withdraw the sale at the bank.
    CancelSale,
    /// The sale is over.
    Finished(Box<SaleResult>),
    /// Back to an empty sale screen.
    NewSale,
    /// A line for the sale screen (about sales resumed after a restart).
    Notice(String),
    /// Pick up the sales the journal holds open (Enter on the recovery
    /// prompt, or R after an error).
    ResumeSales,
    /// At start: read the journal for sales an earlier run left open.
    CheckJournal,
    /// The journal holds open sales: ask before picking them up.
    RecoveryFound(Vec<OpenSale>),
    /// Open the sales lookup (F3).
    OpenLookup,
    /// Look up sales with this merchant reference.
    LookupSales(String),
    /// What the lookup found.
    SalesFound(Box<Lookup>),
    /// Refund a payment (`None`: all that is left).
    Refund {
        /// The payment.
        payment_id: String,
        /// How much.
        amount: Option<Amount>,
    },
    /// How a refund went.
    Refunded(Result<Box<Refund>, String>),
    /// At start: read the server's discovery document.
    Discover,
    /// What the server supports (from its discovery document).
    ServerFeatures {
        /// `backchannel_user_code_parameter_supported`: the sale screen asks
        /// for the customer's user code.
        user_code: bool,
    },
}

/// A sale left open in the journal, as the recovery prompt lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenSale {
    /// The merchant reference (or sale code).
    pub reference: String,
    /// `EUR 12.50`.
    pub amount: String,
    /// The login hint.
    pub customer: String,
    /// Where it stands: `in_flight`, `paying`…
    pub state: String,
}

impl OpenSale {
    /// From a journal record.
    pub fn new(entry: &JournalEntry) -> Self {
        Self {
            reference: entry.display_reference().unwrap_or("(not started)").to_owned(),
            amount: entry.sale.display_amount(),
            customer: entry.sale.customer.to_string(),
            state: serde_json::to_value(entry.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        }
    }
}

/// The result of a lookup by reference.
#[derive(Clone, Debug)]
pub struct Lookup {
    /// The reference looked up.
    pub reference: String,
    /// The journal's sales with it.
    pub sales: Vec<OpenSale>,
    /// The bank's payments with it, or why they are not known.
    pub payments: Result<Vec<Payment>, String>,
}

/// A sale the shop assistant rang up.
#[derive(Debug)]
pub struct SaleOrder {
    /// The sale.
    pub sale: SaleRequest,
    /// How the tokens are delivered.
    pub mode: DeliveryMode,
}

/// What the waiting and result screens show of a started sale (never its
/// `auth_req_id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaleInfo {
    /// The sale code, `CORN-7Q2K`.
    pub code: String,
    /// The binding message the customer compares.
    pub binding_message: String,
    /// `EUR 12.50`.
    pub amount: String,
    /// The login hint.
    pub customer: String,
    /// The merchant reference (the sale code when none was typed).
    pub reference: String,
    /// The delivery mode.
    pub mode: DeliveryMode,
    /// When the bank accepted it, seconds since the epoch.
    pub started_at: i64,
    /// When it expires, seconds since the epoch.
    pub expires_at: i64,
    /// The number to type on the device, for number-matching clients.
    pub number_match: Option<String>,
    /// Picked up from the journal after a restart.
    pub resumed: bool,
}

impl SaleInfo {
    /// What to show of a sale that just started (or was resumed).
    pub fn new(started: &Started, entry: &JournalEntry) -> Self {
        Self {
            code: started.code.clone(),
            binding_message: started.binding_message.to_string(),
            amount: started.sale.display_amount(),
            customer: started.sale.customer.to_string(),
            reference: started.reference.clone(),
            mode: started.mode,
            started_at: entry.started_at.unwrap_or(started.started_unix),
            expires_at: entry.expires_at.unwrap_or_else(|| started.expires_at_unix()),
            number_match: started.number_match.clone(),
            resumed: started.is_resumed(),
        }
    }
}

/// How a sale ended, as the result screen shows it.
///
/// Seam for the payments API: once `POST /api/payments` exists, the worker
/// executes the payment after approval and `Approved` carries its receipt
/// (payment id and status) next to the grant.
#[derive(Clone, Debug)]
pub enum SaleResult {
    /// Approved: the receipt of the grant.
    Approved(Box<Receipt>),
    /// Refused by the customer or the bank, with the server's description.
    Denied {
        /// The sale.
        sale: SaleInfo,
        /// `error_description`.
        reason: Option<String>,
    },
    /// Nobody answered in time.
    Expired {
        /// The sale.
        sale: SaleInfo,
    },
    /// Cancelled at the till.
    Cancelled {
        /// The sale.
        sale: SaleInfo,
        /// Whether and how it was withdrawn at the bank.
        detail: String,
    },
    /// The server or the network failed.
    Failed {
        /// The sale, when it had started.
        sale: Option<SaleInfo>,
        /// The error (the OAuth error code, or what went wrong).
        error: String,
        /// The server's `error_description`.
        description: Option<String>,
        /// The sale is still open in the journal (R resumes waiting).
        open: bool,
    },
}

impl SaleResult {
    /// The sale's delivery mode, when it started.
    pub fn mode(&self) -> Option<DeliveryMode> {
        match self {
            Self::Approved(receipt) => Some(receipt.mode),
            Self::Denied { sale, .. } | Self::Expired { sale } | Self::Cancelled { sale, .. } => Some(sale.mode),
            Self::Failed { sale, .. } => sale.as_ref().map(|s| s.mode),
        }
    }
}
