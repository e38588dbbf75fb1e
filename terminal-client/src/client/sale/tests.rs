use super::*;

#[test]
fn amounts_parse_into_minor_units() {
    assert_eq!("12.50".parse::<Amount>().unwrap().minor_units(), 1250);
    assert_eq!("12.5".parse::<Amount>().unwrap().minor_units(), 1250);
    assert_eq!("12".parse::<Amount>().unwrap().minor_units(), 1200);
    assert_eq!("0.01".parse::<Amount>().unwrap().minor_units(), 1);
    assert_eq!("007.05".parse::<Amount>().unwrap().to_string(), "7.05");
    assert_eq!("12".parse::<Amount>().unwrap().to_string(), "12.00");
}

#[test]
fn bad_amounts_are_refused() {
    for bad in [
        "", "-1", "+1", "1.234", "1,50", ".5", "5.", "1e3", "1.2.3", " 1", "NaN", "١٢",
    ] {
        assert!(
            matches!(bad.parse::<Amount>(), Err(ParseSaleError::Amount(_))),
            "{bad:?} should be refused"
        );
    }
    assert_eq!("0".parse::<Amount>(), Err(ParseSaleError::ZeroAmount));
    assert_eq!("0.00".parse::<Amount>(), Err(ParseSaleError::ZeroAmount));
    assert!(matches!(
        "99999999999999999999999".parse::<Amount>(),
        Err(ParseSaleError::AmountTooLarge(_))
    ));
    assert!(matches!(
        "1000000000.01".parse::<Amount>(),
        Err(ParseSaleError::AmountTooLarge(_))
    ));
}

#[test]
fn currencies_are_three_uppercase_letters() {
    assert_eq!("EUR".parse::<Currency>().unwrap().as_str(), "EUR");
    for bad in ["eur", "EU", "EURO", "E1R", "", "ÉUR"] {
        assert!(bad.parse::<Currency>().is_err(), "{bad:?}");
    }
}

#[test]
fn ibans_are_checked() {
    let iban: Iban = "DE89 3704 0044 0532 0130 00".parse().unwrap();
    assert_eq!(iban.as_str(), "DE89370400440532013000");
    assert_eq!(iban.to_string(), "DE89 3704 0044 0532 0130 00");
    assert!("GB82WEST12345698765432".parse::<Iban>().is_ok());
    assert!(
        "de89370400440532013000".parse::<Iban>().is_ok(),
        "lowercase is normalised"
    );
    assert!("DE88370400440532013000".parse::<Iban>().is_err(), "wrong check digits");
    assert!("DE89".parse::<Iban>().is_err());
    assert!("DE89-3704-0044-0532-0130-00".parse::<Iban>().is_err());
}

fn sale() -> SaleRequest {
    SaleRequest::new(
        "12.50".parse().unwrap(),
        "EUR".parse().unwrap(),
        "alice@example.com",
        "Corner Café",
    )
}

#[test]
fn sale_codes_and_binding_messages() {
    let sale = sale();
    assert_eq!(sale.code_prefix(), "CORN");
    let code = sale.new_code();
    let (prefix, random) = code.split_once('-').unwrap();
    assert_eq!(prefix, "CORN");
    assert_eq!(random.len(), 4);
    assert!(random.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
    assert_eq!(sale.binding_message("CAFE-7Q2K").as_str(), "CAFE-7Q2K · EUR 12.50");

    let mut custom = sale.clone();
    custom.prefix = Some("CAFE".into());
    assert!(custom.new_code().starts_with("CAFE-"));
    custom.prefix = Some("café".into());
    assert!(matches!(custom.validate(), Err(ParseSaleError::Prefix(_))));

    let mut unnamed = sale;
    unnamed.merchant = "Ça & Ça".into();
    assert_eq!(unnamed.code_prefix(), "AA");
    unnamed.merchant = "ééé".into();
    assert_eq!(unnamed.code_prefix(), "POS");
}

#[test]
fn the_longest_binding_message_fits() {
    let mut sale = sale();
    sale.prefix = Some("ABCDEFGH".into());
    sale.amount = Amount::from_minor_units(MAX_MINOR_UNITS).unwrap();
    let message = sale.binding_message(&sale.new_code());
    assert!(message.chars().count() <= MAX_BINDING_MESSAGE, "{message}");
    assert_eq!(message.as_str(), format!("{} · EUR 1000000000.00", &message[..13]));
}

#[test]
fn payment_initiation_details() {
    let mut sale = sale();
    let details = sale.authorization_details("INV-1");
    assert_eq!(
        details,
        json!([{
            "type": "payment_initiation",
            "instructedAmount": {"currency": "EUR", "amount": "12.50"},
            "creditorName": "Corner Café",
            "remittanceInformationUnstructured": "INV-1",
        }])
    );
    sale.iban = Some("DE89370400440532013000".parse().unwrap());
    assert_eq!(
        sale.authorization_details("INV-1")[0]["creditorAccount"],
        json!({"iban": "DE89370400440532013000"})
    );
}

#[test]
fn free_text_is_checked() {
    let mut sale = sale();
    assert!(sale.validate().is_ok());
    sale.customer = LoginHint::new(" ");
    assert_eq!(sale.validate(), Err(ParseSaleError::Customer));
    let mut sale = self::sale();
    sale.reference = Some("line\nbreak".into());
    assert_eq!(sale.validate(), Err(ParseSaleError::Text("reference")));
}
