pub mod mock_engine;
