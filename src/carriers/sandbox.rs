//! The sandbox carrier: realistic journeys picked by the tracking number.
